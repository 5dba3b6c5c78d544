/* Commit and vote results as pure functions of the voters' answers (in the
 * manner of etcd's quorum/majority.go). */
#include "raft/core.h"

/* Insertion sort, descending: n is at most RAFT_MAX_MEMBERS. */
static void sort_descending(uint64_t *v, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		uint64_t x = v[i];
		size_t j = i;
		while (j > 0 && v[j - 1] < x) {
			v[j] = v[j - 1];
			j--;
		}
		v[j] = x;
	}
}

uint64_t raft_quorum_committed_index(const uint64_t *match, size_t n)
{
	uint64_t sorted[RAFT_MAX_MEMBERS];
	if (n == 0 || n > RAFT_MAX_MEMBERS)
		return 0;
	for (size_t i = 0; i < n; i++)
		sorted[i] = match[i];
	sort_descending(sorted, n);
	/* A majority is n/2 + 1 voters: the (n/2)-th largest value (0-based)
	 * is reached by exactly that many. */
	return sorted[n / 2];
}

enum raft_vote_result raft_quorum_vote_result(size_t voters, size_t granted,
					      size_t rejected)
{
	size_t majority = voters / 2 + 1;
	if (granted >= majority)
		return RAFT_VOTE_WON;
	if (rejected >= majority || granted + (voters - granted - rejected) <
					    majority)
		return RAFT_VOTE_LOST;
	return RAFT_VOTE_PENDING;
}
