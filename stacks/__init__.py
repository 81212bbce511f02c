"""Airlake infrastructure: CDK (Python) constructs, one per concern, composed into stacks.

`stacks.platform.build_platform` wires the stacks of one stage; `app.py` calls it. Nothing here is
imported by the Lambda handlers, the Glue jobs or the local runtime.
"""
