/* The end-to-end test's MPI program, run inside the image. Usage:
 *
 *	ranks FILE EXIT NAME...
 *
 * Each rank joins an Allreduce (so the ranks really wired up through the launcher's PMI) and prints, as
 * "hpcship-e2e<TAB>rank<TAB>key<TAB>value" lines: the world size, the sum of all ranks, the first line of FILE
 * (a file only the image has) and the value of each environment variable NAME. EXIT is "-" or "R:C": rank R
 * exits with status C after MPI_Finalize. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
	int rank, size, sum = 0, fail_rank = -1, fail_code = 0;
	char line[256] = "<unreadable>";
	FILE *f;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
	if (argc < 3) {
		fprintf(stderr, "usage: ranks FILE EXIT NAME...\n");
		MPI_Abort(MPI_COMM_WORLD, 64);
	}
	if ((f = fopen(argv[1], "r")) != NULL) {
		if (fgets(line, sizeof line, f) == NULL)
			strcpy(line, "<empty>");
		line[strcspn(line, "\n")] = '\0';
		fclose(f);
	}
	if (strcmp(argv[2], "-") != 0 && sscanf(argv[2], "%d:%d", &fail_rank, &fail_code) != 2) {
		fprintf(stderr, "ranks: EXIT must be - or R:C, got %s\n", argv[2]);
		MPI_Abort(MPI_COMM_WORLD, 64);
	}
	printf("hpcship-e2e\t%d\tsize\t%d\n", rank, size);
	printf("hpcship-e2e\t%d\tsum\t%d\n", rank, sum);
	printf("hpcship-e2e\t%d\tfile\t%s\n", rank, line);
	for (int i = 3; i < argc; i++) {
		const char *v = getenv(argv[i]);
		printf("hpcship-e2e\t%d\t%s\t%s\n", rank, argv[i], v ? v : "<unset>");
	}
	fflush(stdout);
	MPI_Finalize();
	return rank == fail_rank ? fail_code : 0;
}
