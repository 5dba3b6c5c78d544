/* Text built into a caller's buffer (tools/daemon.h): answers of the
 * control socket and of peers, and one-line errors. */

#include "tools/daemon.h"

#include <stdarg.h>
#include <stdio.h>

void text_printf(struct text_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->size == 0 || b->len >= b->size)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->size - b->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		b->len += (size_t)n;
	if (b->len >= b->size)
		b->len = b->size - 1; /* truncated; still a string */
}

void text_json_str(struct text_buf *b, const char *s)
{
	text_printf(b, "\"");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			text_printf(b, "\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			text_printf(b, "\\u%04x", *p);
		else
			text_printf(b, "%c", *p);
	}
	text_printf(b, "\"");
}

int text_error(char *err, size_t size, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, size, fmt, ap);
	va_end(ap);
	return rc;
}
