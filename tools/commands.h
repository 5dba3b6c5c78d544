#ifndef TOOLS_COMMANDS_H
#define TOOLS_COMMANDS_H

/*
 * The subcommands of build/raftfs. Each takes the arguments after its own
 * name (argv[0] is the subcommand) and returns the process exit status of
 * the command-line contract: 0 success, 1 failure (one line on stderr),
 * 2 usage error.
 */

enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,
	EXIT_USAGE = 2,
};

struct command {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv);
};

/* The table of subcommands, ended by an entry with a NULL name. */
extern const struct command raftfs_commands[];

#endif
