/*-------------------------------------------------------------------------
 * src/http/http.h
 *		The one HTTP client of pgmaker (libcurl): what the loader, the S3
 *		reader, the alert deliveries and the external endpoints may call.
 *
 * A transfer is an HttpStream, allocated in the caller's memory context;
 * its libcurl handles are freed by a reset callback of that context, so an
 * ERROR anywhere releases them.  libcurl callbacks never raise and never
 * palloc: they set a flag that the backend side turns into an ERROR once
 * libcurl has returned.  Transfers are driven by the backend itself
 * (curl_multi), which checks for interrupts between two polls, so that a
 * query cancel or statement_timeout stops a transfer within ~100 ms.
 *-------------------------------------------------------------------------
 */
#ifndef PGMAKER_HTTP_H
#define PGMAKER_HTTP_H

#include "postgres.h"

#include "lib/stringinfo.h"
#include "nodes/pg_list.h"

/* Settings (src/guc.c). */
extern char *ml_http_allow;
extern int	ml_http_timeout;	/* ms */
extern int	ml_http_max_bytes;	/* kB */

typedef struct HttpRequest
{
	const char *url;			/* http://, https:// or (superusers) file:// */
	const char *method;			/* NULL: GET, or POST when body is set */
	List	   *headers;		/* of "Name: value" C strings */
	const char *body;
	size_t		body_len;
	const char *aws_sigv4;		/* CURLOPT_AWS_SIGV4 provider, or NULL */
	const char *userpwd;		/* with aws_sigv4: "access_key:secret_key" */
	Oid			as_role;		/* whose network rights apply; InvalidOid:
								 * the current user */
	int			timeout_ms;		/* 0: ml.http_timeout */
} HttpRequest;

typedef struct HttpStream HttpStream;

/* HttpCheckAllowed raises an error unless role may fetch url. */
extern void HttpCheckAllowed(const char *url, Oid role);

/*
 * HttpOpen starts a transfer and returns once the response status is known
 * and the body (of a 2xx response) can be read; follows up to
 * HTTP_MAX_REDIRECTS redirects, each checked against ml.http_allow.  A
 * status of 400 or more is an error showing the start of the body.
 */
#define HTTP_MAX_REDIRECTS 5
extern HttpStream *HttpOpen(const HttpRequest *req);

/* HttpRead copies up to len bytes of the body into buf; 0 at its end. */
extern size_t HttpRead(HttpStream *s, char *buf, size_t len);

/* The response's Content-Type, or NULL; valid until HttpClose. */
extern const char *HttpContentType(HttpStream *s);

/* The URL the body came from, after redirects. */
extern const char *HttpEffectiveUrl(HttpStream *s);

/* HttpClose frees the transfer's handles at once (else the context does). */
extern void HttpClose(HttpStream *s);

/*
 * HttpFetch runs a whole request and returns its body (at most
 * ml.http_max_bytes); *status gets the HTTP status.  With fail_on_status,
 * a status of 400 or more is an error; else the caller looks at *status.
 */
extern StringInfo HttpFetch(const HttpRequest *req, long *status, bool fail_on_status);

/* HttpUrlForDisplay strips a URL's query string for messages. */
extern char *HttpUrlForDisplay(const char *url);

#endif							/* PGMAKER_HTTP_H */
