"""Pure DataFrame transforms of the cold path (Glue jobs in glue_jobs/ orchestrate them).

Only pyspark and airlake's plain-Python modules (contract, catalog) are imported here, never
awsglue, so the same functions run on Glue, on a local SparkSession and in tests.
"""
