/* Launch test program: each rank joins an Allreduce (so the ranks really wired up)
 * and prints, one "rank<TAB>key<TAB>value" line each, the world size, the sum of all
 * ranks and the value of every environment variable named on its command line. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
	int rank, size, sum = 0;
	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
	printf("%d\tsize\t%d\n", rank, size);
	printf("%d\tsum\t%d\n", rank, sum);
	for (int i = 1; i < argc; i++) {
		const char *v = getenv(argv[i]);
		printf("%d\t%s\t%s\n", rank, argv[i], v ? v : "<unset>");
	}
	fflush(stdout);
	MPI_Finalize();
	return 0;
}
