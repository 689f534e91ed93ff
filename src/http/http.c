/*-------------------------------------------------------------------------
 * src/http/http.c
 *		pgmaker's HTTP client: libcurl driven from the backend, with the
 *		access rules of ml.http_allow, a size cap, a stall timeout, manual
 *		redirects and cancellation.
 *
 * Design.  One curl multi handle lives for the whole backend; its
 * connection cache keeps connections alive between requests to the same
 * host (an external model is called once per row).  Each transfer is an
 * easy handle inside an HttpStream.  The backend runs the transfer itself:
 * curl_multi_perform, then curl_multi_poll for at most 100 ms, then
 * CHECK_FOR_INTERRUPTS, so a cancel stops it; the transfer's progress
 * callback also aborts it once a cancel or termination is pending.  The
 * write callback copies the body into a malloc'd buffer and pauses the
 * transfer when the reader is behind, so a stream of any length uses a
 * bounded amount of memory.
 *
 * Redirects are followed here, not by libcurl, so that every hop is checked
 * against the access rules; a redirect never leads to a file:// URL.
 * file:// URLs (superusers only) are read with plain read(2): libcurl's
 * file transfers cannot pause, so they would buffer a whole file.
 *
 * Invariants: the libcurl callbacks only touch the HttpStream (no palloc,
 * no ereport); every path that raises releases the easy handle first, and
 * the reset callback of the owning memory context releases it otherwise.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <unistd.h>

#include <curl/curl.h>

#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/formatting.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "pgmaker.h"
#include "http/http.h"

/* the reader is this far behind: pause the transfer */
#define HTTP_BUFFER_HIGH (1024 * 1024)
/* bytes of an error response's body shown in the message */
#define HTTP_ERROR_BODY 300
/* longest wait in curl_multi_poll before looking for interrupts */
#define HTTP_POLL_MS 100

struct HttpStream
{
	CURL	   *easy;
	struct curl_slist *headers;
	bool		in_multi;
	MemoryContextCallback cb;

	int			fd;				/* a file:// URL's file, or -1 */
	bool		file_eof;
	char	   *url;			/* current URL (palloc'd) */
	Oid			role;
	int			timeout_ms;
	size_t		max_bytes;

	/* written by the callbacks */
	char	   *buf;			/* malloc'd body buffer */
	size_t		buf_len;
	size_t		buf_pos;
	size_t		buf_cap;
	size_t		total;			/* body bytes accepted */
	uint64		activity;		/* grows with every byte received */
	bool		paused;
	bool		too_big;
	bool		out_of_memory;
	bool		headers_done;
	long		status;
	char		content_type[128];
	char		location[2048];
	bool		location_too_long;

	/* set from curl_multi_info_read */
	bool		done;
	CURLcode	result;
	char		errbuf[CURL_ERROR_SIZE];
};

static CURLM *backend_multi = NULL;

/* ---------- access rules ---------- */

static char *
url_scheme(const char *url)
{
	const char *sep = strstr(url, "://");

	if (sep == NULL || sep == url)
		return NULL;
	return asc_tolower(url, sep - url);
}

/*
 * prefix_matches: url starts with prefix, and a prefix that names only a
 * host ("https://api.example.com") does not match a longer host name or a
 * user part ("https://api.example.com.evil.org", "...com@evil.org").
 */
static bool
prefix_matches(const char *url, const char *prefix)
{
	size_t		n = strlen(prefix);
	char		next;

	if (n == 0 || strncmp(url, prefix, n) != 0)
		return false;
	if (prefix[n - 1] == '/')
		return true;
	next = url[n];
	return next == '\0' || next == '/' || next == '?' || next == '#';
}

char *
HttpUrlForDisplay(const char *url)
{
	const char *start = url;
	const char *scheme_end = strstr(url, "://");
	StringInfoData out;

	initStringInfo(&out);
	if (scheme_end)
	{
		const char *host = scheme_end + 3;
		const char *at = strchr(host, '@');
		const char *slash = strchr(host, '/');

		appendBinaryStringInfo(&out, url, host - url);
		start = (at && (slash == NULL || at < slash)) ? at + 1 : host;
	}
	appendBinaryStringInfo(&out, start, strcspn(start, "?#"));
	return out.data;
}

/*
 * canonical_url is the URL as libcurl will request it (dot segments
 * removed, scheme in lower case), so that "/allowed/../other" cannot slip
 * past a prefix; NULL when libcurl cannot parse it.
 */
static char *
canonical_url(const char *url)
{
	CURLU	   *u = curl_url();
	char	   *out = NULL;
	char	   *result = NULL;

	if (u == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_URL, &out, 0) == CURLUE_OK)
	{
		result = pstrdup(out);
		curl_free(out);
	}
	curl_url_cleanup(u);
	return result;
}

void
HttpCheckAllowed(const char *url, Oid role)
{
	char	   *scheme = url_scheme(url);
	bool		super;

	if (!OidIsValid(role))
		role = GetUserId();
	super = superuser_arg(role);

	if (scheme == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid URL \"%s\"", HttpUrlForDisplay(url)),
				 errhint("A URL starts with http://, https://, s3:// or file://.")));
	if (strcmp(scheme, "file") == 0)
	{
		if (!super)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to read \"%s\"", url),
					 errdetail("Only superusers may read file:// URLs.")));
		return;
	}
	if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("unsupported URL scheme \"%s\"", scheme),
				 errhint("pgmaker fetches http://, https://, s3:// and file:// URLs.")));
	if (super)
		return;

	{
		char	   *raw = pstrdup(ml_http_allow ? ml_http_allow : "");
		List	   *prefixes = NIL;
		ListCell   *lc;

		if (!SplitGUCList(raw, ',', &prefixes))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid list syntax in \"ml.http_allow\"")));
		if (prefixes == NIL)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("network access is not allowed for role \"%s\"",
							GetUserNameFromId(role, false)),
					 errdetail("ml.http_allow is empty, so only superusers may fetch URLs."),
					 errhint("A superuser can list allowed URL prefixes in ml.http_allow.")));
		foreach(lc, prefixes)
		{
			if (prefix_matches(url, (const char *) lfirst(lc)))
				return;
		}
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("URL \"%s\" is not allowed by ml.http_allow", HttpUrlForDisplay(url)),
				 errhint("A superuser can add its prefix to ml.http_allow.")));
	}
}

/* ---------- libcurl callbacks: no palloc, no ereport ---------- */

static size_t
http_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	HttpStream *s = (HttpStream *) arg;
	size_t		n = size * nmemb;

	/* a redirect's body is not wanted; an error's only its start */
	if (s->status >= 300 && s->status < 400)
		return n;
	if (s->status >= 400)
	{
		size_t		keep = Min(n, HTTP_ERROR_BODY > s->buf_len ? HTTP_ERROR_BODY - s->buf_len : 0);

		n = keep;				/* fall through and store only this much */
		if (keep == 0)
			return size * nmemb;
	}
	else if (s->buf_len - s->buf_pos > 0 && s->buf_len + n > HTTP_BUFFER_HIGH)
	{
		s->paused = true;
		return CURL_WRITEFUNC_PAUSE;
	}
	if (s->max_bytes > 0 && s->total + n > s->max_bytes)
	{
		s->too_big = true;
		return 0;
	}
	if (s->buf_len + n > s->buf_cap)
	{
		size_t		cap = Max(s->buf_cap * 2, s->buf_len + n);
		char	   *grown = realloc(s->buf, cap);

		if (grown == NULL)
		{
			s->out_of_memory = true;
			return 0;
		}
		s->buf = grown;
		s->buf_cap = cap;
	}
	memcpy(s->buf + s->buf_len, ptr, n);
	s->buf_len += n;
	s->total += n;
	s->activity += n;
	return size * nmemb;
}

/* Trims a header value: leading blanks, trailing CR/LF and blanks. */
static void
copy_header_value(char *dst, size_t dstsize, const char *src, size_t len, bool *too_long)
{
	while (len > 0 && (*src == ' ' || *src == '\t'))
		src++, len--;
	while (len > 0 && (src[len - 1] == '\r' || src[len - 1] == '\n' || src[len - 1] == ' '))
		len--;
	if (len >= dstsize)
	{
		if (too_long)
			*too_long = true;
		len = dstsize - 1;
	}
	memcpy(dst, src, len);
	dst[len] = '\0';
}

static size_t
http_header(char *line, size_t size, size_t nitems, void *arg)
{
	HttpStream *s = (HttpStream *) arg;
	size_t		n = size * nitems;

	s->activity += n;
	if (n >= 5 && strncmp(line, "HTTP/", 5) == 0)
	{
		const char *sp = memchr(line, ' ', n);

		/* a new response (after 100 Continue or a redirect) starts over */
		s->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		s->content_type[0] = '\0';
		s->location[0] = '\0';
		s->headers_done = false;
	}
	else if (n <= 2 && (line[0] == '\r' || line[0] == '\n'))
	{
		if (s->status >= 200)
			s->headers_done = true;
	}
	else if (n > 13 && pg_strncasecmp(line, "content-type:", 13) == 0)
		copy_header_value(s->content_type, sizeof(s->content_type), line + 13, n - 13, NULL);
	else if (n > 9 && pg_strncasecmp(line, "location:", 9) == 0)
		copy_header_value(s->location, sizeof(s->location), line + 9, n - 9,
						  &s->location_too_long);
	return n;
}

/*
 * http_interrupted: a cancel or termination is pending and may be acted
 * on now (not while interrupts are held, as during a job's bookkeeping).
 */
static bool
http_interrupted(void)
{
	return (QueryCancelPending || ProcDiePending) && INTERRUPTS_CAN_BE_PROCESSED();
}

static int
http_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
			  curl_off_t ultotal, curl_off_t ulnow)
{
	/* reading the flags set by the signal handlers is safe here */
	return http_interrupted() ? 1 : 0;
}

/* ---------- handles ---------- */

static void
http_release(HttpStream *s)
{
	if (s->fd >= 0)
	{
		close(s->fd);
		s->fd = -1;
	}
	if (s->easy)
	{
		if (s->in_multi)
			curl_multi_remove_handle(backend_multi, s->easy);
		curl_easy_cleanup(s->easy);
		s->easy = NULL;
		s->in_multi = false;
	}
	if (s->headers)
	{
		curl_slist_free_all(s->headers);
		s->headers = NULL;
	}
	free(s->buf);
	s->buf = NULL;
	s->buf_len = s->buf_pos = s->buf_cap = 0;
}

static void
http_release_callback(void *arg)
{
	http_release((HttpStream *) arg);
}

static void
http_global_init(void)
{
	static bool done = false;

	if (done)
		return;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("could not initialize libcurl")));
	backend_multi = curl_multi_init();
	if (backend_multi == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create a libcurl multi handle")));
	done = true;
}

#define SETOPT(s, opt, val) \
	do { \
		if (curl_easy_setopt((s)->easy, (opt), (val)) != CURLE_OK) \
			http_fail((s), ERRCODE_SYSTEM_ERROR, "could not set libcurl option " #opt, NULL); \
	} while (0)

static void http_fail(HttpStream *s, int sqlstate, const char *msg, const char *detail) pg_attribute_noreturn();

static void
http_fail(HttpStream *s, int sqlstate, const char *msg, const char *detail)
{
	char	   *url = HttpUrlForDisplay(s->url);

	http_release(s);
	ereport(ERROR,
			(errcode(sqlstate),
			 errmsg("could not fetch \"%s\": %s", url, msg),
			 detail ? errdetail_internal("%s", detail) : 0));
}

/* Starts the request for s->url on a fresh easy handle. */
static void
http_start(HttpStream *s, const HttpRequest *req)
{
	char	   *scheme = url_scheme(s->url);
	ListCell   *lc;

	http_release(s);
	s->easy = curl_easy_init();
	if (s->easy == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create a libcurl handle")));
	s->total = 0;
	s->status = 0;
	s->headers_done = false;
	s->paused = false;
	s->done = false;
	s->content_type[0] = '\0';
	s->location[0] = '\0';
	s->errbuf[0] = '\0';

	SETOPT(s, CURLOPT_URL, s->url);
	SETOPT(s, CURLOPT_PRIVATE, (void *) s);
	SETOPT(s, CURLOPT_PROTOCOLS_STR, scheme);
	SETOPT(s, CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(s, CURLOPT_SSL_VERIFYPEER, 1L);
	SETOPT(s, CURLOPT_SSL_VERIFYHOST, 2L);
	SETOPT(s, CURLOPT_NOSIGNAL, 1L);
	SETOPT(s, CURLOPT_CONNECTTIMEOUT_MS, (long) s->timeout_ms);
	SETOPT(s, CURLOPT_ERRORBUFFER, s->errbuf);
	SETOPT(s, CURLOPT_WRITEFUNCTION, http_write);
	SETOPT(s, CURLOPT_WRITEDATA, s);
	SETOPT(s, CURLOPT_HEADERFUNCTION, http_header);
	SETOPT(s, CURLOPT_HEADERDATA, s);
	SETOPT(s, CURLOPT_XFERINFOFUNCTION, http_progress);
	SETOPT(s, CURLOPT_XFERINFODATA, s);
	SETOPT(s, CURLOPT_NOPROGRESS, 0L);
	SETOPT(s, CURLOPT_USERAGENT, "pgmaker");
	if (s->max_bytes > 0)
		SETOPT(s, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) s->max_bytes);

	foreach(lc, req->headers)
	{
		struct curl_slist *grown = curl_slist_append(s->headers, (const char *) lfirst(lc));

		if (grown == NULL)
			http_fail(s, ERRCODE_OUT_OF_MEMORY, "out of memory", NULL);
		s->headers = grown;
	}
	if (req->body != NULL)
	{
		struct curl_slist *grown = curl_slist_append(s->headers, "Expect:");

		if (grown == NULL)
			http_fail(s, ERRCODE_OUT_OF_MEMORY, "out of memory", NULL);
		s->headers = grown;
		SETOPT(s, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) req->body_len);
		SETOPT(s, CURLOPT_POSTFIELDS, req->body);
	}
	if (req->method != NULL)
		SETOPT(s, CURLOPT_CUSTOMREQUEST, req->method);
	if (s->headers)
		SETOPT(s, CURLOPT_HTTPHEADER, s->headers);
	if (req->aws_sigv4 != NULL)
	{
		SETOPT(s, CURLOPT_AWS_SIGV4, req->aws_sigv4);
		SETOPT(s, CURLOPT_USERPWD, req->userpwd);
	}

	if (curl_multi_add_handle(backend_multi, s->easy) != CURLM_OK)
		http_fail(s, ERRCODE_SYSTEM_ERROR, "could not start the transfer", NULL);
	s->in_multi = true;
}

/* Turns a finished transfer's libcurl error into an ERROR. */
static void
http_check_result(HttpStream *s)
{
	char		msg[CURL_ERROR_SIZE + 64];

	if (s->too_big || s->result == CURLE_FILESIZE_EXCEEDED)
	{
		char	   *url = HttpUrlForDisplay(s->url);

		http_release(s);
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("could not fetch \"%s\": the response is larger than ml.http_max_bytes (%d kB)",
						url, ml_http_max_bytes),
				 errhint("A superuser can raise ml.http_max_bytes.")));
	}
	if (s->out_of_memory)
		http_fail(s, ERRCODE_OUT_OF_MEMORY, "out of memory", NULL);
	if (s->result == CURLE_ABORTED_BY_CALLBACK)
	{
		http_release(s);
		CHECK_FOR_INTERRUPTS();
		ereport(ERROR,
				(errcode(ERRCODE_QUERY_CANCELED),
				 errmsg("canceling the transfer of \"%s\"", HttpUrlForDisplay(s->url))));
	}
	if (s->result == CURLE_OPERATION_TIMEDOUT)
	{
		snprintf(msg, sizeof(msg), "timed out after %d ms", s->timeout_ms);
		http_fail(s, ERRCODE_CONNECTION_FAILURE, msg, s->errbuf[0] ? s->errbuf : NULL);
	}
	if (s->result != CURLE_OK)
	{
		snprintf(msg, sizeof(msg), "%s", s->errbuf[0] ? s->errbuf : curl_easy_strerror(s->result));
		http_fail(s, ERRCODE_CONNECTION_FAILURE, msg, NULL);
	}
}

/*
 * http_pump runs the transfer until ready(s) holds or the transfer ends;
 * raises on a stall longer than the timeout and on interrupts.
 */
static void
http_pump(HttpStream *s, bool (*ready) (HttpStream *s))
{
	TimestampTz last = GetCurrentTimestamp();
	uint64		seen = s->activity;

	for (;;)
	{
		int			running;
		int			queued;
		CURLMsg    *msg;

		if (curl_multi_perform(backend_multi, &running) != CURLM_OK)
			http_fail(s, ERRCODE_SYSTEM_ERROR, "libcurl failed", NULL);
		/* the multi handle drives every open stream: tell each its own end */
		while ((msg = curl_multi_info_read(backend_multi, &queued)) != NULL)
		{
			HttpStream *owner = NULL;

			if (msg->msg == CURLMSG_DONE &&
				curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &owner) == CURLE_OK &&
				owner != NULL)
			{
				owner->done = true;
				owner->result = msg->data.result;
			}
		}
		if (s->too_big || s->out_of_memory)
			http_check_result(s);
		if (s->done || ready(s))
			return;

		if (s->activity != seen)
		{
			seen = s->activity;
			last = GetCurrentTimestamp();
		}
		else if (TimestampDifferenceExceeds(last, GetCurrentTimestamp(), s->timeout_ms))
		{
			char		msg_text[64];

			snprintf(msg_text, sizeof(msg_text), "no data for %d ms", s->timeout_ms);
			http_release(s);
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("could not fetch \"%s\": timed out (%s)",
							HttpUrlForDisplay(s->url), msg_text),
					 errhint("ml.http_timeout sets the longest wait.")));
		}
		if (curl_multi_poll(backend_multi, NULL, 0, HTTP_POLL_MS, NULL) != CURLM_OK)
			http_fail(s, ERRCODE_SYSTEM_ERROR, "libcurl failed", NULL);
		if (http_interrupted())
		{
			http_release(s);
			CHECK_FOR_INTERRUPTS();
			/* a cancel that CHECK_FOR_INTERRUPTS did not raise still ends it */
			ereport(ERROR,
					(errcode(ERRCODE_QUERY_CANCELED),
					 errmsg("canceling the transfer of \"%s\"", HttpUrlForDisplay(s->url))));
		}
		CHECK_FOR_INTERRUPTS();
	}
}

static bool
ready_headers(HttpStream *s)
{
	return s->headers_done || s->buf_len > 0;
}

static bool
ready_data(HttpStream *s)
{
	return s->buf_len > s->buf_pos;
}

static bool
ready_never(HttpStream *s)
{
	return false;
}

/* Raises the error for a response with status >= 400. */
static void
http_status_error(HttpStream *s)
{
	StringInfoData body;
	char	   *url = HttpUrlForDisplay(s->url);
	long		status = s->status;

	/* the start of the body is enough, and is already buffered or near */
	if (!s->done && s->buf_len < HTTP_ERROR_BODY)
		http_pump(s, ready_never);
	/* printable ASCII only: the body's encoding is unknown */
	initStringInfo(&body);
	for (size_t i = 0; i < s->buf_len; i++)
	{
		unsigned char c = (unsigned char) s->buf[i];

		appendStringInfoChar(&body, (c < 0x20 || c >= 0x7f) ? ' ' : (char) c);
	}
	http_release(s);
	ereport(ERROR,
			(errcode(ERRCODE_CONNECTION_EXCEPTION),
			 errmsg("could not fetch \"%s\": HTTP status %ld", url, status),
			 body.len > 0 ? errdetail("The response began: %s", body.data) : 0));
}

/* Opens a file:// URL (superusers only): its decoded local path. */
static void
http_open_file(HttpStream *s, const HttpRequest *req)
{
	CURLU	   *u;
	char	   *path = NULL;
	char	   *host = NULL;
	char	   *local;

	HttpCheckAllowed(s->url, s->role);
	if (req->body != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot post to \"%s\"", s->url)));
	u = curl_url();
	if (u == NULL ||
		curl_url_set(u, CURLUPART_URL, s->url, 0) != CURLUE_OK ||
		curl_url_get(u, CURLUPART_PATH, &path, CURLU_URLDECODE) != CURLUE_OK)
	{
		if (u)
			curl_url_cleanup(u);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid URL \"%s\"", s->url)));
	}
	(void) curl_url_get(u, CURLUPART_HOST, &host, 0);
	local = pstrdup(path);
	curl_free(path);
	if (host != NULL && host[0] != '\0' && pg_strcasecmp(host, "localhost") != 0)
	{
		curl_free(host);
		curl_url_cleanup(u);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("file URL \"%s\" names another host", s->url),
				 errhint("Write file:///path for a file on the database server.")));
	}
	curl_free(host);
	curl_url_cleanup(u);

	s->fd = open(local, O_RDONLY | PG_BINARY, 0);
	if (s->fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\": %m", local)));
	s->status = 200;
}

/* Reads a file:// URL's next bytes into the buffer; false at its end. */
static bool
http_fill_from_file(HttpStream *s)
{
	ssize_t		n;

	if (s->buf == NULL)
	{
		s->buf = malloc(HTTP_BUFFER_HIGH);
		if (s->buf == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory")));
		s->buf_cap = HTTP_BUFFER_HIGH;
	}
	CHECK_FOR_INTERRUPTS();
	n = read(s->fd, s->buf, s->buf_cap);
	if (n < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read \"%s\": %m", s->url)));
	s->buf_len = n;
	s->buf_pos = 0;
	s->total += n;
	if (s->max_bytes > 0 && s->total > s->max_bytes)
	{
		s->too_big = true;
		http_check_result(s);
	}
	return n > 0;
}

static HttpStream *
http_open(const HttpRequest *req, bool fail_on_status)
{
	HttpStream *s;

	http_global_init();
	s = palloc0(sizeof(HttpStream));
	s->role = OidIsValid(req->as_role) ? req->as_role : GetUserId();
	s->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : ml_http_timeout;
	s->max_bytes = (size_t) ml_http_max_bytes * 1024;
	s->url = pstrdup(req->url);
	s->fd = -1;
	s->cb.func = http_release_callback;
	s->cb.arg = s;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &s->cb);

	if (pg_strncasecmp(s->url, "file://", 7) == 0)
	{
		http_open_file(s, req);
		return s;
	}

	for (int hops = 0;; hops++)
	{
		char	   *canonical;

		HttpCheckAllowed(s->url, s->role);
		canonical = canonical_url(s->url);
		if (canonical == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid URL \"%s\"", HttpUrlForDisplay(s->url))));
		s->url = canonical;
		HttpCheckAllowed(s->url, s->role);
		http_start(s, req);
		http_pump(s, ready_headers);
		if (s->done)
			http_check_result(s);

		if (s->status >= 300 && s->status < 400 && s->location[0] != '\0')
		{
			CURLU	   *u;
			char	   *next = NULL;

			if (req->body != NULL)
				http_fail(s, ERRCODE_CONNECTION_EXCEPTION,
						  psprintf("HTTP status %ld: a request with a body is not redirected", s->status),
						  NULL);
			/* its signature and token would go to wherever the redirect points */
			if (req->aws_sigv4 != NULL)
				http_fail(s, ERRCODE_CONNECTION_EXCEPTION,
						  psprintf("HTTP status %ld: a signed request is not redirected", s->status),
						  "An S3 redirect usually means that the region is wrong; set the region option.");
			if (hops >= HTTP_MAX_REDIRECTS)
				http_fail(s, ERRCODE_CONNECTION_EXCEPTION,
						  psprintf("more than %d redirects", HTTP_MAX_REDIRECTS), NULL);
			if (s->location_too_long)
				http_fail(s, ERRCODE_CONNECTION_EXCEPTION, "the redirect's location is too long", NULL);
			u = curl_url();
			if (u == NULL ||
				curl_url_set(u, CURLUPART_URL, s->url, 0) != CURLUE_OK ||
				curl_url_set(u, CURLUPART_URL, s->location, 0) != CURLUE_OK ||
				curl_url_get(u, CURLUPART_URL, &next, 0) != CURLUE_OK)
			{
				if (u)
					curl_url_cleanup(u);
				http_fail(s, ERRCODE_CONNECTION_EXCEPTION, "the redirect's location is not a URL", NULL);
			}
			curl_url_cleanup(u);
			s->url = pstrdup(next);
			curl_free(next);
			{
				char	   *scheme = url_scheme(s->url);

				if (scheme == NULL || (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0))
				{
					http_release(s);
					ereport(ERROR,
							(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
							 errmsg("could not fetch \"%s\": redirected to a URL that is not http or https",
									HttpUrlForDisplay(req->url))));
				}
			}
			continue;
		}
		if (s->status >= 400 && fail_on_status)
			http_status_error(s);
		return s;
	}
}

HttpStream *
HttpOpen(const HttpRequest *req)
{
	return http_open(req, true);
}

size_t
HttpRead(HttpStream *s, char *buf, size_t len)
{
	size_t		n;

	if (s->fd >= 0)
	{
		if (!ready_data(s) && !http_fill_from_file(s))
			return 0;
	}
	else if (s->easy == NULL)
		return 0;
	else if (!ready_data(s))
	{
		s->buf_len = s->buf_pos = 0;
		if (s->paused)
		{
			s->paused = false;
			/* may call the write callback at once with the held data */
			if (curl_easy_pause(s->easy, CURLPAUSE_CONT) != CURLE_OK)
				http_fail(s, ERRCODE_SYSTEM_ERROR, "could not resume the transfer", NULL);
		}
		if (!ready_data(s) && !s->done)
			http_pump(s, ready_data);
		if (!ready_data(s))
		{
			http_check_result(s);
			return 0;
		}
	}
	n = Min(len, s->buf_len - s->buf_pos);
	memcpy(buf, s->buf + s->buf_pos, n);
	s->buf_pos += n;
	return n;
}

const char *
HttpContentType(HttpStream *s)
{
	return s->content_type[0] ? s->content_type : NULL;
}

const char *
HttpEffectiveUrl(HttpStream *s)
{
	return s->url;
}

void
HttpClose(HttpStream *s)
{
	http_release(s);
}

StringInfo
HttpFetch(const HttpRequest *req, long *status, bool fail_on_status)
{
	HttpStream *s = http_open(req, fail_on_status);
	StringInfo	out = makeStringInfo();
	char		chunk[8192];
	size_t		n;

	*status = s->status;
	if (s->status >= 400)
	{
		/* only the start of an error body is kept */
		if (!s->done)
			http_pump(s, ready_never);
		appendBinaryStringInfo(out, s->buf ? s->buf : "", s->buf_len);
		http_release(s);
		return out;
	}
	while ((n = HttpRead(s, chunk, sizeof(chunk))) > 0)
		appendBinaryStringInfo(out, chunk, n);
	http_release(s);
	return out;
}
