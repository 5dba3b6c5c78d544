/*
 * The daemon's log: one line per event, "2026-11-22T23:10:01.123Z info
 * node=1 <message>", written with one fwrite under a lock so lines from
 * the runtime's, the transport's and the daemon's threads never mix.
 */

#include "tools/daemon.h"

#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *log_out;
static uint64_t log_node;
static int log_max = LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void daemon_log_init(FILE *out, uint64_t node, int max_level)
{
	pthread_mutex_lock(&log_lock);
	log_out = out;
	log_node = node;
	log_max = max_level;
	pthread_mutex_unlock(&log_lock);
}

static void write_line(int level, const char *label, const char *msg)
{
	struct timespec ts;
	struct tm tm;
	char stamp[32];

	if (level < LOG_ERROR)
		level = LOG_ERROR;
	if (level > LOG_DEBUG)
		level = LOG_DEBUG;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	pthread_mutex_lock(&log_lock);
	if (log_out != NULL && level <= log_max) {
		fprintf(log_out, "%s.%03ldZ %s node=%llu %s%s%s\n", stamp,
			ts.tv_nsec / 1000000L, level_names[level],
			(unsigned long long)log_node, label ? label : "",
			label ? ": " : "", msg);
		fflush(log_out);
	}
	pthread_mutex_unlock(&log_lock);
}

void daemon_log(int level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	write_line(level, NULL, msg);
}

void daemon_log_hook(void *ctx, int level, const char *line)
{
	write_line(level, ctx, line);
}
