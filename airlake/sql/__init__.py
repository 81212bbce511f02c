"""Local SQL: the analysts' Athena `.sql` files run on the local lake through DuckDB.

`airlake.sql.transpile` turns Athena SQL into DuckDB SQL with Athena's semantics (or refuses);
`airlake.sql.runner` registers the catalog's tables and the `athena/views` over a lake folder.
"""
