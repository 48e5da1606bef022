// Package conncsv holds the DuckDB read_csv call that the bench commands
// load a Zeek conn.log with (TSV, plain or gzip): the peer dwell's ingest
// is measured against, and the staging of bench/duckdbfloor.
package conncsv

// ReadCSV reads the conn.log named by the query's parameter at its place:
// Zeek's '#' lines are comments, '-' is NULL, and the 21 fields keep
// Zeek's names (T and F stay text, for the query to compare).
const ReadCSV = `read_csv(?, delim = E'\t', header = false, comment = '#', auto_detect = false, nullstr = '-', quote = '', escape = '',
	columns = {'ts': 'DOUBLE', 'uid': 'VARCHAR', 'id_orig_h': 'VARCHAR', 'id_orig_p': 'USMALLINT',
	'id_resp_h': 'VARCHAR', 'id_resp_p': 'USMALLINT', 'proto': 'VARCHAR', 'service': 'VARCHAR',
	'duration': 'DOUBLE', 'orig_bytes': 'UBIGINT', 'resp_bytes': 'UBIGINT', 'conn_state': 'VARCHAR',
	'local_orig': 'VARCHAR', 'local_resp': 'VARCHAR', 'missed_bytes': 'UBIGINT', 'history': 'VARCHAR',
	'orig_pkts': 'UBIGINT', 'orig_ip_bytes': 'UBIGINT', 'resp_pkts': 'UBIGINT', 'resp_ip_bytes': 'UBIGINT',
	'tunnel_parents': 'VARCHAR'})`
