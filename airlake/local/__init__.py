"""The local runtime: the real pipeline on an embedded AWS emulation, local Spark and DuckDB.

* `endpoint`: a moto server in a child process on loopback (dummy credentials, refuses real AWS).
* `resources`: the platform's streams, buckets, table, topics and queues, named and sized from
  the same `airlake.settings.StageConfig` the CDK stacks use.
* `esm`: Lambda's Kinesis event source mapping, re-implemented to invoke the real handlers.
* `firehose`: the raw-landing forwarder (moto's Firehose cannot read from Kinesis).
* `pipeline`: the whole flow, as run by `make demo` and the integration tests.
"""
