/*
 * httpc.h - the client side of one HTTP/1.1 exchange: the parser of a
 * response, as the CLI's remote mode reads it (src/cli/remote.c) from a
 * server it does not have to trust.
 *
 * The response is read whole (the request says "Connection: close"), so
 * the parser sees every byte at once: a status line, header lines, an
 * empty line, and a body of exactly Content-Length bytes (or, without
 * one, everything to the end). Chunked bodies are refused (certkeepd
 * never sends one for an admin reply).
 */
#ifndef CK_PROTO_HTTPC_H
#define CK_PROTO_HTTPC_H

#include <stddef.h>

/* Header section limit: a longer one is refused. */
#define HTTPC_HEADERS_MAX (16u * 1024)

struct httpc_response {
	int status;			/* 100..599 */
	char content_type[128];		/* "" if none */
	size_t body_off;		/* the body within the buffer */
	size_t body_len;
};

/*
 * Parse the LEN bytes at BUF as one response. 0, or CK_E_PARSE with a
 * message (no status line, a bad header, a body shorter or longer than
 * its Content-Length, chunked encoding, headers over the limit).
 */
int httpc_parse_response(const unsigned char *buf, size_t len,
    struct httpc_response *out);

#endif
