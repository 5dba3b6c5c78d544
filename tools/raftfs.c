/*
 * raftfs: one binary, many subcommands (../shared/DESIGN.md "Command-line
 * contract"). This file only dispatches; each subcommand lives in its own
 * file and library modules hold the logic.
 */
#include <stdio.h>
#include <string.h>

#include "tools/commands.h"

#ifndef RAFTFS_VERSION
#define RAFTFS_VERSION "0.1.0"
#endif

static int cmd_version(int argc, char **argv)
{
	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "raftfs version: takes no arguments\n");
		return EXIT_USAGE;
	}
	printf("raftfs %s\n", RAFTFS_VERSION);
	return EXIT_OK;
}

static void print_usage(FILE *out)
{
	fprintf(out, "usage: raftfs COMMAND [ARGS...]\n\ncommands:\n");
	for (const struct command *c = raftfs_commands; c->name; c++)
		fprintf(out, "  %-10s %s\n", c->name, c->summary);
	fprintf(out, "  %-10s %s\n", "help", "this list");
	fprintf(out, "  %-10s %s\n", "version", "print the version");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		print_usage(stderr);
		return EXIT_USAGE;
	}
	const char *name = argv[1];
	if (!strcmp(name, "help") || !strcmp(name, "--help") ||
	    !strcmp(name, "-h")) {
		print_usage(stdout);
		return EXIT_OK;
	}
	if (!strcmp(name, "version") || !strcmp(name, "--version"))
		return cmd_version(argc - 1, argv + 1);
	for (const struct command *c = raftfs_commands; c->name; c++) {
		if (!strcmp(c->name, name))
			return c->run(argc - 1, argv + 1);
	}
	fprintf(stderr, "raftfs: unknown command '%s' (try 'raftfs help')\n",
		name);
	return EXIT_USAGE;
}
