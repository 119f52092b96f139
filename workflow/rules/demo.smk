# The embedded demo data: synthetic CESM2 / GFDL-CM4 Omon and ORAS5 files (with their ENSO statistics) under
# demo.output_dir, scanned by the catalog like any data tree. Include before catalog.smk (it uses rules.demo_data).


rule demo_data:
    input:
        code=src(*script_imports("demo_data")),
    output:
        directory(config["demo"]["output_dir"]),
    log:
        log("demo_data"),
    benchmark:
        bench("demo_data")
    conda:
        ENV
    threads: 1
    resources:
        # the default demo peaks near 1 GB; the full 1850–2014 record near 1.5 GB
        mem_mb=3000,
        runtime=20,
    params:
        demo=cfg("demo"),
    script:
        "../../scripts/demo_data.py"
