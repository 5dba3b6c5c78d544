/* The core's only source of randomness: splitmix64, seeded by the caller, so
 * a simulator run is a function of its seed. */
#include "raft/core.h"

void raft_random_seed(struct raft_random *g, uint64_t seed)
{
	g->state = seed;
}

uint64_t raft_random_next(struct raft_random *g)
{
	uint64_t z = (g->state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t raft_random_range(struct raft_random *g, uint64_t lo, uint64_t hi)
{
	if (hi <= lo)
		return lo;
	return lo + raft_random_next(g) % (hi - lo);
}
