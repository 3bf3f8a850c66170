// Package imb parses the output of the Intel MPI Benchmarks (IMB-MPI1, and the
// tables of IMB-P2P, IMB-NBC, IMB-EXT and IMB-IO, which share the format).
//
// IMB prints a preamble of "#" lines and then, for each benchmark and process count,
// one table. The parser finds each table by its "# Benchmarking" line and maps the
// columns by the names in the table's header, so it reads every output format IMB
// has (IMB_output.c): PingPong's four columns, the t_min/t_max/t_avg columns of
// collectives, Barrier's table without #bytes, -multi's Group column, the Msg/sec
// column of Uniband and IMB-P2P.
//
//	#---------------------------------------------------
//	# Benchmarking PingPong                  → Benchmark.Name
//	# #processes = 2                         → Benchmark.Processes
//	#---------------------------------------------------
//	       #bytes #repetitions      t[usec]   Mbytes/sec   → Benchmark.Columns
//	            0         1000         2.23         0.00   → Benchmark.Rows[0]
//	      4194304           10      1082.94      3693.63
//	      8388608 out-of-mem.; needed X= ...               → Row.Failure
//
// Rows IMB could not measure (out-of-mem., int-overflow., time-out.) become rows with
// Failure set. Anything that does not fit the format is a *ParseError naming the
// line; the parser never panics. Scanner reads a stream one table at a time, so the
// output of a long run need not fit in memory.
package imb
