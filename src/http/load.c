/*-------------------------------------------------------------------------
 * src/http/load.c
 *		ml.load: CSV or JSON lines from a URL into a table, streamed.
 *
 * Design.  The body is read through the HTTP client (http.c), inflated
 * when it starts with a gzip header, and split into records here: a CSV
 * record (quoted fields may span lines) or one JSON object per line.  The
 * first records (option "sample_rows") are kept to infer the column types
 * of a table to create.  Everything then goes to PostgreSQL's own COPY
 * FROM (a data source callback), which converts, checks constraints, fires
 * triggers, maintains indexes and routes partitions exactly as COPY does.
 * A CSV body without "on_error": "skip" is passed on byte for byte (the
 * bytes read for the sample are kept and replayed first), so COPY's errors
 * name the file's own line numbers.  Otherwise every record is checked
 * against the target columns (field count, and the text of integer,
 * float, numeric, boolean, date and timestamp columns), so that a
 * malformed line is reported with its line number or, with "on_error":
 * "skip", left out and counted; CSV records that pass are handed on as
 * read, JSON objects rewritten as CSV.
 *
 * Memory: the sample, one record and a 64 kB output buffer; nothing grows
 * with the size of the file.  Everything happens in the caller's
 * transaction, so an error leaves no rows and no created table.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <zlib.h>

#include "access/table.h"
#include "catalog/pg_type.h"
#include "commands/copy.h"
#include "common/jsonapi.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_node.h"
#include "parser/parse_relation.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"

#include "pgmaker.h"
#include "data/data.h"
#include "http/http.h"
#include "http/s3.h"
#include "http/values.h"

PG_FUNCTION_INFO_V1(ml_load);

#define LOAD_CHUNK (64 * 1024)
#define LOAD_MAX_COLUMNS 1600
#define LOAD_MAX_RECORD (64 * 1024 * 1024)

typedef enum LoadFormat
{
	LOAD_CSV,
	LOAD_JSONL
} LoadFormat;

typedef enum LoadMode
{
	MODE_APPEND,				/* create when missing, else append */
	MODE_CREATE,
	MODE_REPLACE
} LoadMode;

typedef struct LoadOptions
{
	LoadFormat	format;
	bool		format_given;
	LoadMode	mode;
	bool		header;
	char		delimiter;
	char		quote;
	char	   *null_string;
	bool		skip_errors;
	int			sample_rows;
	char	   *encoding;
	S3Options	s3;
} LoadOptions;

/* One record: its bytes as read, and its fields (NULL for a null field). */
typedef struct Record
{
	StringInfoData raw;
	StringInfoData values;		/* field texts, each NUL-terminated */
	int			nfields;
	int			cap;
	int		   *offsets;		/* into values; -1: null */
	bool	   *quoted;
	int64		line;			/* first line of the record */
} Record;

typedef struct LoadState
{
	LoadOptions opts;
	const char *url;

	/* the body: HTTP stream, maybe inflated */
	HttpStream *http;
	bool		gzip;
	z_stream	zs;
	bool		zs_live;
	bool		zs_end;
	char	   *zin;
	size_t		zin_len;
	char		ibuf[LOAD_CHUNK];
	size_t		ipos;
	size_t		ilen;
	bool		eof;
	int64		line;			/* lines consumed so far */

	/* the columns */
	int			ncols;
	char	  **colnames;
	FieldCheck *checks;
	Record		rec;
	MemoryContext rowcxt;

	/* the sample, replayed first */
	List	   *sample;			/* of Record * */
	ListCell   *replay;
	bool		header_pending; /* the header still to pass to COPY */
	StringInfoData header_raw;

	/*
	 * CSV without "on_error": "skip" goes to COPY byte for byte: the bytes
	 * read for the header and the sample are kept (tee), then the rest of
	 * the body follows as it is read.
	 */
	bool		passthrough;
	bool		teeing;
	StringInfoData tee;
	size_t		tee_from;		/* bytes of ibuf before this are in tee */
	int			tee_pos;		/* handed to COPY so far */

	/* what COPY reads */
	StringInfoData out;
	int			outpos;
	bool		finished;

	/* counts */
	int64		skipped;
	char	   *first_skip;
} LoadState;

/* COPY's data source callback has no argument: the load in progress */
static LoadState *active_load = NULL;

/* ---------- the byte stream ---------- */

static void
zs_free_callback(void *arg)
{
	LoadState  *ls = (LoadState *) arg;

	if (ls->zs_live)
		inflateEnd(&ls->zs);
	ls->zs_live = false;
}

static size_t
raw_read(LoadState *ls, char *buf, size_t len)
{
	return HttpRead(ls->http, buf, len);
}

/* Fills ibuf; false at the end of the body. */
static bool
fill_input(LoadState *ls)
{
	if (ls->eof)
		return false;
	if (ls->teeing)
	{
		appendBinaryStringInfo(&ls->tee, ls->ibuf + ls->tee_from, ls->ilen - ls->tee_from);
		ls->tee_from = 0;
	}
	ls->ipos = ls->ilen = 0;
	if (!ls->gzip)
	{
		ls->ilen = raw_read(ls, ls->ibuf, sizeof(ls->ibuf));
		if (ls->ilen == 0)
			ls->eof = true;
		return !ls->eof;
	}

	for (;;)
	{
		int			rc;

		if (ls->zs.avail_in == 0 && !ls->zs_end)
		{
			size_t		n = raw_read(ls, ls->zin, LOAD_CHUNK);

			if (n == 0)
			{
				if (!ls->zs_end)
					ereport(ERROR,
							(errcode(ERRCODE_DATA_CORRUPTED),
							 errmsg("gzip data of \"%s\" ends early", HttpUrlForDisplay(ls->url))));
			}
			ls->zs.next_in = (Bytef *) ls->zin;
			ls->zs.avail_in = (uInt) n;
		}
		if (ls->zs_end)
		{
			/* another gzip member may follow (concatenated files) */
			if (ls->zs.avail_in == 0)
			{
				size_t		n = raw_read(ls, ls->zin, LOAD_CHUNK);

				if (n == 0)
				{
					ls->eof = true;
					return false;
				}
				ls->zs.next_in = (Bytef *) ls->zin;
				ls->zs.avail_in = (uInt) n;
			}
			if (inflateReset(&ls->zs) != Z_OK)
				elog(ERROR, "inflateReset failed");
			ls->zs_end = false;
		}
		ls->zs.next_out = (Bytef *) ls->ibuf;
		ls->zs.avail_out = sizeof(ls->ibuf);
		rc = inflate(&ls->zs, Z_NO_FLUSH);
		if (rc == Z_STREAM_END)
			ls->zs_end = true;
		else if (rc != Z_OK && rc != Z_BUF_ERROR)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("could not decompress \"%s\": %s", HttpUrlForDisplay(ls->url),
							ls->zs.msg ? ls->zs.msg : "corrupt gzip data")));
		ls->ilen = sizeof(ls->ibuf) - ls->zs.avail_out;
		if (ls->ilen > 0)
			return true;
		CHECK_FOR_INTERRUPTS();
	}
}

static inline int
next_byte(LoadState *ls)
{
	if (ls->ipos >= ls->ilen && !fill_input(ls))
		return EOF;
	return (unsigned char) ls->ibuf[ls->ipos++];
}

static inline int
peek_byte(LoadState *ls)
{
	if (ls->ipos >= ls->ilen && !fill_input(ls))
		return EOF;
	return (unsigned char) ls->ibuf[ls->ipos];
}

/*
 * open_body opens the URL and looks at its first bytes: gzip is inflated
 * from here on, and with format 'auto' they pick CSV or JSON lines.
 */
static void
open_body(LoadState *ls)
{
	HttpRequest req;
	unsigned char magic[2];
	size_t		n = 0;

	S3PrepareRequest(ls->url, &ls->opts.s3, &req);
	ls->http = HttpOpen(&req);

	/* peek two bytes without losing them */
	n = HttpRead(ls->http, (char *) magic, 1);
	if (n == 1)
		n += HttpRead(ls->http, (char *) magic + 1, 1);
	ls->zin = palloc(LOAD_CHUNK);
	if (n == 2 && magic[0] == 0x1f && magic[1] == 0x8b)
	{
		ls->gzip = true;
		memset(&ls->zs, 0, sizeof(ls->zs));
		if (inflateInit2(&ls->zs, 16 + MAX_WBITS) != Z_OK)
			elog(ERROR, "inflateInit2 failed");
		ls->zs_live = true;
		{
			MemoryContextCallback *cb = palloc(sizeof(MemoryContextCallback));

			cb->func = zs_free_callback;
			cb->arg = ls;
			MemoryContextRegisterResetCallback(CurrentMemoryContext, cb);
		}
		memcpy(ls->zin, magic, 2);
		ls->zs.next_in = (Bytef *) ls->zin;
		ls->zs.avail_in = 2;
	}
	else
	{
		memcpy(ls->ibuf, magic, n);
		ls->ilen = n;
		ls->ipos = 0;
		if (n == 0)
			ls->eof = true;
	}

	if (!ls->opts.format_given)
	{
		const char *path = HttpUrlForDisplay(HttpEffectiveUrl(ls->http));
		const char *ctype = HttpContentType(ls->http);
		size_t		plen = strlen(path);
		int			c;

		if ((plen >= 6 && pg_strcasecmp(path + plen - 6, ".jsonl") == 0) ||
			(plen >= 9 && pg_strcasecmp(path + plen - 9, ".jsonl.gz") == 0) ||
			(plen >= 7 && pg_strcasecmp(path + plen - 7, ".ndjson") == 0) ||
			(plen >= 10 && pg_strcasecmp(path + plen - 10, ".ndjson.gz") == 0) ||
			(ctype && (strstr(ctype, "ndjson") || strstr(ctype, "jsonl"))))
			ls->opts.format = LOAD_JSONL;
		else if ((plen >= 4 && pg_strcasecmp(path + plen - 4, ".csv") == 0) ||
				 (plen >= 7 && pg_strcasecmp(path + plen - 7, ".csv.gz") == 0) ||
				 (ctype && strstr(ctype, "csv")))
			ls->opts.format = LOAD_CSV;
		else
		{
			/* by content: a JSON object first, else CSV */
			while ((c = peek_byte(ls)) != EOF && isspace(c) && c != '\n')
				ls->ipos++;
			ls->opts.format = (c == '{') ? LOAD_JSONL : LOAD_CSV;
		}
	}
}

/* ---------- records ---------- */

static void
record_init(Record *r)
{
	initStringInfo(&r->raw);
	initStringInfo(&r->values);
	r->cap = 16;
	r->offsets = palloc(sizeof(int) * r->cap);
	r->quoted = palloc(sizeof(bool) * r->cap);
	r->nfields = 0;
}

static void
record_reset(Record *r)
{
	resetStringInfo(&r->raw);
	resetStringInfo(&r->values);
	r->nfields = 0;
}

static void
record_add_field(Record *r, int offset, bool quoted)
{
	if (r->nfields >= LOAD_MAX_COLUMNS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("record at line " INT64_FORMAT " has more than %d fields",
						r->line, LOAD_MAX_COLUMNS)));
	if (r->nfields == r->cap)
	{
		r->cap *= 2;
		r->offsets = repalloc(r->offsets, sizeof(int) * r->cap);
		r->quoted = repalloc(r->quoted, sizeof(bool) * r->cap);
	}
	r->offsets[r->nfields] = offset;
	r->quoted[r->nfields] = quoted;
	r->nfields++;
}

static inline const char *
record_field(const Record *r, int i)
{
	return r->offsets[i] < 0 ? NULL : r->values.data + r->offsets[i];
}

static Record *
record_copy(const Record *src)
{
	Record	   *r = palloc(sizeof(Record));

	initStringInfo(&r->raw);
	appendBinaryStringInfo(&r->raw, src->raw.data, src->raw.len);
	initStringInfo(&r->values);
	appendBinaryStringInfo(&r->values, src->values.data, src->values.len);
	r->nfields = src->nfields;
	r->cap = Max(src->nfields, 1);
	r->offsets = palloc(sizeof(int) * r->cap);
	r->quoted = palloc(sizeof(bool) * r->cap);
	memcpy(r->offsets, src->offsets, sizeof(int) * src->nfields);
	memcpy(r->quoted, src->quoted, sizeof(bool) * src->nfields);
	r->line = src->line;
	return r;
}

/* Ends the current CSV field: its value, or NULL for an unquoted null string. */
static void
csv_end_field(LoadState *ls, Record *r, int start, bool quoted)
{
	const char *value = r->values.data + start;

	if (!quoted && strcmp(value, ls->opts.null_string) == 0)
	{
		r->values.len = start;
		r->values.data[start] = '\0';
		record_add_field(r, -1, false);
		return;
	}
	appendStringInfoChar(&r->values, '\0');
	record_add_field(r, start, quoted);
}

/*
 * read_csv_record reads one CSV record as COPY's CSV mode reads it: a
 * quote anywhere starts a quoted section, a doubled quote inside one is a
 * quote, and delimiters and line ends inside one are data.  Blank lines
 * are passed over.  False at the end of the body.
 */
static bool
read_csv_record(LoadState *ls, Record *r)
{
	const char	delim = ls->opts.delimiter;
	const char	quote = ls->opts.quote;

	for (;;)
	{
		bool		in_quotes = false;
		bool		quoted = false;
		int			start;
		int			c;

		record_reset(r);
		r->line = ls->line + 1;
		start = r->values.len;
		c = next_byte(ls);
		if (c == EOF)
			return false;
		for (;;)
		{
			if (c == EOF)
			{
				if (in_quotes)
					ereport(ERROR,
							(errcode(ERRCODE_BAD_COPY_FILE_FORMAT),
							 errmsg("unterminated quoted field in the record starting at line " INT64_FORMAT,
									r->line)));
				break;
			}
			if (in_quotes)
			{
				if (c == quote)
				{
					if (peek_byte(ls) == quote)
					{
						appendStringInfoCharMacro(&r->raw, (char) c);
						appendStringInfoCharMacro(&r->values, (char) c);
						c = next_byte(ls);
					}
					else
						in_quotes = false;
				}
				else
				{
					if (c == '\n')
						ls->line++;
					appendStringInfoCharMacro(&r->values, (char) c);
				}
				appendStringInfoCharMacro(&r->raw, (char) c);
			}
			else if (c == delim)
			{
				appendStringInfoCharMacro(&r->raw, (char) c);
				csv_end_field(ls, r, start, quoted);
				start = r->values.len;
				quoted = false;
			}
			else if (c == '\n' || c == '\r')
			{
				if (c == '\r' && peek_byte(ls) == '\n')
					(void) next_byte(ls);
				ls->line++;
				break;
			}
			else if (c == quote)
			{
				in_quotes = quoted = true;
				appendStringInfoCharMacro(&r->raw, (char) c);
			}
			else
			{
				appendStringInfoCharMacro(&r->raw, (char) c);
				appendStringInfoCharMacro(&r->values, (char) c);
			}
			if (r->raw.len > LOAD_MAX_RECORD)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("the record starting at line " INT64_FORMAT " is longer than %d bytes",
								r->line, LOAD_MAX_RECORD)));
			c = next_byte(ls);
		}
		if (r->raw.len == 0)
			continue;			/* a blank line */
		csv_end_field(ls, r, start, quoted);
		return true;
	}
}

/* Reads one line into r->raw (without its end); false at the end. */
static bool
read_line(LoadState *ls, Record *r)
{
	int			c;

	record_reset(r);
	r->line = ls->line + 1;
	c = next_byte(ls);
	if (c == EOF)
		return false;
	while (c != EOF && c != '\n')
	{
		appendStringInfoCharMacro(&r->raw, (char) c);
		if (r->raw.len > LOAD_MAX_RECORD)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("line " INT64_FORMAT " is longer than %d bytes", r->line, LOAD_MAX_RECORD)));
		c = next_byte(ls);
	}
	ls->line++;
	if (r->raw.len > 0 && r->raw.data[r->raw.len - 1] == '\r')
		r->raw.data[--r->raw.len] = '\0';
	return true;
}

/* ---------- JSON lines ---------- */

/*
 * The top-level keys of a JSON object, in the order written (jsonb sorts
 * them), by a parse with semantic actions.
 */
typedef struct KeyCollector
{
	int			depth;
	List	   *keys;
} KeyCollector;

static ML_JSON_ACTION
keys_object_start(void *state)
{
	((KeyCollector *) state)->depth++;
	ML_JSON_ACTION_DONE;
}

static ML_JSON_ACTION
keys_object_end(void *state)
{
	((KeyCollector *) state)->depth--;
	ML_JSON_ACTION_DONE;
}

static ML_JSON_ACTION
keys_field_start(void *state, char *fname, bool isnull)
{
	KeyCollector *kc = (KeyCollector *) state;
	ListCell   *lc;

	if (kc->depth != 1)
		ML_JSON_ACTION_DONE;
	foreach(lc, kc->keys)
	{
		if (strcmp((char *) lfirst(lc), fname) == 0)
			ML_JSON_ACTION_DONE;
	}
	kc->keys = lappend(kc->keys, pstrdup(fname));
	ML_JSON_ACTION_DONE;
}

/* Appends the line's new top-level keys to *keys; false if it is not JSON. */
static bool
json_collect_keys(char *text, int len, List **keys)
{
	KeyCollector kc = {0, *keys};
	JsonSemAction sem;
	bool		ok;

	memset(&sem, 0, sizeof(sem));
	sem.semstate = &kc;
	sem.object_start = keys_object_start;
	sem.object_end = keys_object_end;
	sem.object_field_start = keys_field_start;
	ok = JsonParseText(text, len, &sem);
	*keys = kc.keys;
	return ok;
}

/* The text of a JSON object member, as a column value (NULL for null). */
static char *
json_member_text(JsonbValue *v)
{
	if (v->type == jbvNull)
		return NULL;
	if (v->type == jbvBinary)
		return JsonbToCString(NULL, v->val.binary.data, v->val.binary.len);
	return JsonbValueToCString(v);
}

/*
 * json_record parses the line in r->raw into fields in the order of the
 * given columns (when colnames is NULL, the keys are appended to *keys in
 * the order first seen).  Returns an error message, or NULL when it is fine.
 */
static char *
json_record(LoadState *ls, Record *r, List **keys)
{
	Jsonb	   *jb;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	  **texts;
	bool	   *seen;
	char	   *key = NULL;

	if (!JsonParseText(r->raw.data, r->raw.len, NULL))
		return pstrdup("not valid JSON");
	jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(r->raw.data)));
	if (!JB_ROOT_IS_OBJECT(jb) || JB_ROOT_IS_SCALAR(jb))
		return pstrdup("not a JSON object");

	if (keys != NULL)
	{
		(void) json_collect_keys(r->raw.data, r->raw.len, keys);
		return NULL;
	}

	texts = palloc0(sizeof(char *) * ls->ncols);
	seen = palloc0(sizeof(bool) * ls->ncols);
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			key = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE)
		{
			int			col = -1;

			for (int i = 0; i < ls->ncols; i++)
			{
				if (strcmp(ls->colnames[i], key) == 0)
				{
					col = i;
					break;
				}
			}
			if (col < 0)
				return psprintf("unexpected key \"%s\"", key);
			texts[col] = json_member_text(&v);
			seen[col] = true;
		}
	}
	resetStringInfo(&r->values);
	r->nfields = 0;
	for (int i = 0; i < ls->ncols; i++)
	{
		if (texts[i] == NULL)
			record_add_field(r, -1, false);
		else
		{
			int			start = r->values.len;

			appendStringInfoString(&r->values, texts[i]);
			appendStringInfoChar(&r->values, '\0');
			record_add_field(r, start, true);
		}
	}
	return NULL;
}

/*
 * record_problem returns why the record cannot be loaded, or NULL.
 */
static char *
record_problem(LoadState *ls, Record *r)
{
	if (ls->opts.format == LOAD_JSONL)
	{
		char	   *why = json_record(ls, r, NULL);

		if (why)
			return why;
	}
	else if (r->nfields != ls->ncols)
		return psprintf("expected %d fields, found %d", ls->ncols, r->nfields);

	for (int i = 0; i < ls->ncols; i++)
	{
		const char *value = record_field(r, i);

		if (value != NULL && !ValueTextPasses(ls->checks[i], value))
		{
			char	   *shown = pnstrdup(value, pg_mbcliplen(value, strlen(value), 40));

			return psprintf("invalid %s \"%s\" for column \"%s\"",
							ValueCheckName(ls->checks[i]), shown, ls->colnames[i]);
		}
	}
	return NULL;
}

/* Reports or counts a malformed record. */
static void
reject_record(LoadState *ls, Record *r, const char *why)
{
	if (!ls->opts.skip_errors)
		ereport(ERROR,
				(errcode(ERRCODE_BAD_COPY_FILE_FORMAT),
				 errmsg("malformed %s at line " INT64_FORMAT " of \"%s\": %s",
						ls->opts.format == LOAD_CSV ? "CSV" : "JSON line",
						r->line, HttpUrlForDisplay(ls->url), why),
				 errhint("Pass options => '{\"on_error\": \"skip\"}' to skip malformed lines.")));
	if (ls->skipped == 0)
	{
		MemoryContext old = MemoryContextSwitchTo(GetMemoryChunkContext(ls));

		ls->first_skip = psprintf("line " INT64_FORMAT ": %s", r->line, why);
		MemoryContextSwitchTo(old);
	}
	ls->skipped++;
}

/* Appends a record for COPY: CSV as read, JSON rewritten as CSV. */
static void
emit_record(LoadState *ls, Record *r)
{
	if (ls->opts.format == LOAD_CSV)
	{
		appendBinaryStringInfo(&ls->out, r->raw.data, r->raw.len);
		appendStringInfoChar(&ls->out, '\n');
		return;
	}
	for (int i = 0; i < ls->ncols; i++)
	{
		const char *value = record_field(r, i);

		if (i > 0)
			appendStringInfoChar(&ls->out, ',');
		if (value == NULL)
			continue;
		appendStringInfoChar(&ls->out, '"');
		for (const char *p = value; *p; p++)
		{
			if (*p == '"')
				appendStringInfoChar(&ls->out, '"');
			appendStringInfoChar(&ls->out, *p);
		}
		appendStringInfoChar(&ls->out, '"');
	}
	appendStringInfoChar(&ls->out, '\n');
}

/* Reads the next record; blank lines of JSON lines data are passed over. */
static bool
read_record(LoadState *ls, Record *r)
{
	if (ls->opts.format == LOAD_CSV)
		return read_csv_record(ls, r);
	while (read_line(ls, r))
	{
		if (strspn(r->raw.data, " \t") < (size_t) r->raw.len)
			return true;
	}
	return false;
}

/*
 * load_source_cb is COPY's data source: it hands over the sample, then
 * the rest of the body, record by record, leaving out rejected ones.
 */
static int
load_source_cb(void *outbuf, int minread, int maxread)
{
	LoadState  *ls = active_load;
	int			n;

	if (ls->passthrough)
	{
		if (ls->tee_pos < ls->tee.len)
		{
			n = Min(maxread, ls->tee.len - ls->tee_pos);
			memcpy(outbuf, ls->tee.data + ls->tee_pos, n);
			ls->tee_pos += n;
			return n;
		}
		if (ls->ipos >= ls->ilen && !fill_input(ls))
			return 0;
		n = Min((size_t) maxread, ls->ilen - ls->ipos);
		memcpy(outbuf, ls->ibuf + ls->ipos, n);
		ls->ipos += n;
		return n;
	}

	if (ls->outpos >= ls->out.len)
	{
		MemoryContext old;

		resetStringInfo(&ls->out);
		ls->outpos = 0;
		if (ls->header_pending)
		{
			appendBinaryStringInfo(&ls->out, ls->header_raw.data, ls->header_raw.len);
			appendStringInfoChar(&ls->out, '\n');
			ls->header_pending = false;
		}
		old = MemoryContextSwitchTo(ls->rowcxt);
		while (!ls->finished && ls->out.len < LOAD_CHUNK)
		{
			Record	   *r;
			char	   *why;

			if (ls->replay != NULL)
			{
				r = (Record *) lfirst(ls->replay);
				ls->replay = lnext(ls->sample, ls->replay);
			}
			else
			{
				MemoryContextReset(ls->rowcxt);
				r = &ls->rec;
				if (!read_record(ls, r))
				{
					ls->finished = true;
					break;
				}
			}
			why = record_problem(ls, r);
			if (why)
				reject_record(ls, r, why);
			else
				emit_record(ls, r);
			CHECK_FOR_INTERRUPTS();
		}
		MemoryContextSwitchTo(old);
	}
	n = Min(maxread, ls->out.len - ls->outpos);
	memcpy(outbuf, ls->out.data + ls->outpos, n);
	ls->outpos += n;
	return n;
}

/* ---------- options ---------- */

static char
single_char_option(JsonbValue *v, const char *key)
{
	char	   *s = JsonbValueToCString(v);

	if (v->type != jbvString || s == NULL || strlen(s) != 1 || (unsigned char) s[0] >= 0x80 ||
		s[0] == '\n' || s[0] == '\r')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be a single one-byte character", key)));
	return s[0];
}

static void
load_option(const char *key, JsonbValue *v, void *arg)
{
	LoadOptions *o = (LoadOptions *) arg;
	char	   *s = JsonbValueToCString(v);

	if (S3Option(&o->s3, key, v))
		return;
	if (strcmp(key, "header") == 0)
	{
		if (v->type != jbvBool)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"header\" must be a boolean")));
		o->header = v->val.boolean;
	}
	else if (strcmp(key, "delimiter") == 0)
		o->delimiter = single_char_option(v, key);
	else if (strcmp(key, "quote") == 0)
		o->quote = single_char_option(v, key);
	else if (strcmp(key, "null") == 0)
	{
		if (v->type != jbvString)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"null\" must be a string")));
		o->null_string = s;
	}
	else if (strcmp(key, "mode") == 0)
	{
		if (s && strcmp(s, "append") == 0)
			o->mode = MODE_APPEND;
		else if (s && strcmp(s, "create") == 0)
			o->mode = MODE_CREATE;
		else if (s && strcmp(s, "replace") == 0)
			o->mode = MODE_REPLACE;
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"mode\" must be \"append\", \"create\" or \"replace\"")));
	}
	else if (strcmp(key, "on_error") == 0)
	{
		if (s && strcmp(s, "error") == 0)
			o->skip_errors = false;
		else if (s && strcmp(s, "skip") == 0)
			o->skip_errors = true;
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"on_error\" must be \"error\" or \"skip\"")));
	}
	else if (strcmp(key, "sample_rows") == 0)
	{
		double		d;

		if (!JsonbValueToDouble(v, &d) || d != floor(d) || d < 1 || d > 1000000)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"sample_rows\" must be an integer between 1 and 1000000")));
		o->sample_rows = (int) d;
	}
	else if (strcmp(key, "encoding") == 0)
	{
		if (s == NULL || pg_char_to_encoding(s) < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"encoding\" must name an encoding")));
		o->encoding = s;
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown option \"%s\"", key),
				 errhint("ml.load takes header, delimiter, quote, null, mode, on_error, sample_rows, encoding, credentials, endpoint and region.")));
}

/* ---------- the target table ---------- */

/* Column names of the data: the header, JSON keys, or column1..N. */
static void
data_columns(LoadState *ls, Record *header)
{
	if (ls->opts.format == LOAD_JSONL)
	{
		List	   *keys = NIL;
		ListCell   *lc;

		foreach(lc, ls->sample)
		{
			Record	   *r = (Record *) lfirst(lc);

			if (json_record(ls, r, &keys) != NULL)
				continue;		/* rejected later, with its line number */
		}
		if (keys == NIL)
			ereport(ERROR,
					(errcode(ERRCODE_BAD_COPY_FILE_FORMAT),
					 errmsg("no JSON object in the first %d lines of \"%s\"",
							ls->opts.sample_rows, HttpUrlForDisplay(ls->url)),
					 errhint("Each line of JSON lines data is one object.")));
		ls->ncols = list_length(keys);
		ls->colnames = palloc(sizeof(char *) * ls->ncols);
		for (int i = 0; i < ls->ncols; i++)
		{
			ls->colnames[i] = (char *) list_nth(keys, i);
			if (strlen(ls->colnames[i]) >= NAMEDATALEN)
				ereport(ERROR,
						(errcode(ERRCODE_NAME_TOO_LONG),
						 errmsg("key \"%s\" of \"%s\" is too long for a column name",
								ls->colnames[i], HttpUrlForDisplay(ls->url)),
						 errdetail("Names have at most %d bytes.", NAMEDATALEN - 1)));
		}
		return;
	}

	if (header != NULL)
	{
		ls->ncols = header->nfields;
		ls->colnames = palloc(sizeof(char *) * ls->ncols);
		for (int i = 0; i < ls->ncols; i++)
		{
			const char *name = record_field(header, i);

			while (name && isspace((unsigned char) *name))
				name++;
			if (name == NULL || *name == '\0')
				ls->colnames[i] = psprintf("column%d", i + 1);
			else
			{
				char	   *trimmed = pstrdup(name);
				int			len = strlen(trimmed);

				while (len > 0 && isspace((unsigned char) trimmed[len - 1]))
					trimmed[--len] = '\0';
				if (len >= NAMEDATALEN)
					ereport(ERROR,
							(errcode(ERRCODE_NAME_TOO_LONG),
							 errmsg("column name \"%s\" in the header is too long", trimmed),
							 errdetail("Names have at most %d bytes.", NAMEDATALEN - 1)));
				ls->colnames[i] = trimmed;
			}
		}
	}
	else
	{
		Record	   *first = ls->sample ? (Record *) linitial(ls->sample) : NULL;

		ls->ncols = first ? first->nfields : 0;
		ls->colnames = palloc(sizeof(char *) * Max(ls->ncols, 1));
		for (int i = 0; i < ls->ncols; i++)
			ls->colnames[i] = psprintf("column%d", i + 1);
	}
	if (ls->ncols == 0)
		ereport(ERROR,
				(errcode(ERRCODE_BAD_COPY_FILE_FORMAT),
				 errmsg("\"%s\" has no data", HttpUrlForDisplay(ls->url))));
	for (int i = 0; i < ls->ncols; i++)
		for (int j = 0; j < i; j++)
			if (strcmp(ls->colnames[i], ls->colnames[j]) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_COLUMN),
						 errmsg("column \"%s\" appears twice in the header of \"%s\"",
								ls->colnames[i], HttpUrlForDisplay(ls->url))));
}

/* CREATE TABLE with the types the sample suggests. */
static void
create_target(LoadState *ls, const NewTable *t)
{
	StringInfoData sql;

	/* JSON objects become fields in the order of the columns first */
	if (ls->opts.format == LOAD_JSONL)
	{
		ListCell   *lc;

		foreach(lc, ls->sample)
		{
			Record	   *r = (Record *) lfirst(lc);

			if (json_record(ls, r, NULL) != NULL)
				r->nfields = 0;
		}
	}

	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE TABLE %s (", t->qualified);
	for (int i = 0; i < ls->ncols; i++)
	{
		int			mask = INFER_ALL;
		bool		any = false;
		ListCell   *lc;

		foreach(lc, ls->sample)
		{
			Record	   *r = (Record *) lfirst(lc);
			const char *value;

			if (r->nfields != ls->ncols)
				continue;
			value = record_field(r, i);
			if (value == NULL)
				continue;
			any = true;
			mask &= ValueInferMask(value);
		}
		appendStringInfo(&sql, "%s%s %s", i ? ", " : "", quote_identifier(ls->colnames[i]),
						 ValueInferredType(mask, any));
	}
	appendStringInfoChar(&sql, ')');
	DataRunStatement(sql.data, SPI_OK_UTILITY);
}

/* Checks per column of the existing table, which must have them all. */
static void
target_checks(LoadState *ls, Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);

	ls->checks = palloc(sizeof(FieldCheck) * ls->ncols);
	for (int i = 0; i < ls->ncols; i++)
	{
		AttrNumber	att = InvalidAttrNumber;

		for (int a = 0; a < desc->natts; a++)
		{
			Form_pg_attribute attr = TupleDescAttr(desc, a);

			if (!attr->attisdropped && strcmp(NameStr(attr->attname), ls->colnames[i]) == 0)
			{
				att = attr->attnum;
				ls->checks[i] = ValueCheckForType(attr->atttypid);
				break;
			}
		}
		if (att == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of \"%s\" does not exist in relation \"%s\"",
							ls->colnames[i], HttpUrlForDisplay(ls->url), RelationGetRelationName(rel)),
					 errhint("The columns of the data must be columns of the table; mode \"replace\" keeps the table's columns too.")));
	}
}

/*
 * check_insert_privileges adds rel to pstate's range table for COPY and
 * checks the INSERT privileges on the loaded columns as COPY checks them.
 */
static void
check_insert_privileges(ParseState *pstate, Relation rel, List *attnames)
{
	ParseNamespaceItem *nsitem;
	ListCell   *lc;
	Bitmapset  *cols = NULL;

	nsitem = addRangeTableEntryForRelation(pstate, rel, RowExclusiveLock, NULL, false, false);
	foreach(lc, attnames)
	{
		AttrNumber	att = attnameAttNum(rel, strVal(lfirst(lc)), false);

		cols = bms_add_member(cols, att - FirstLowInvalidHeapAttributeNumber);
	}
#if PG_VERSION_NUM >= 160000
	nsitem->p_perminfo->requiredPerms = ACL_INSERT;
	nsitem->p_perminfo->insertedCols = cols;
	ExecCheckPermissions(pstate->p_rtable, list_make1(nsitem->p_perminfo), true);
#else
	nsitem->p_rte->requiredPerms = ACL_INSERT;
	nsitem->p_rte->insertedCols = cols;
	ExecCheckRTPerms(pstate->p_rtable, true);
#endif
	if (check_enable_rls(RelationGetRelid(rel), InvalidOid, false) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("ml.load cannot load into \"%s\", which has row-level security",
						RelationGetRelationName(rel)),
				 errhint("Load into a table without row-level security and insert from it.")));
}

static uint64
copy_into(LoadState *ls, Relation rel)
{
	ParseState *pstate = make_parsestate(NULL);
	List	   *attnames = NIL;
	List	   *options = NIL;
#if PG_VERSION_NUM >= 140000
	CopyFromState cstate;
#else
	CopyState	cstate;
#endif
	uint64		rows;

	for (int i = 0; i < ls->ncols; i++)
		attnames = lappend(attnames, makeString(ls->colnames[i]));
	check_insert_privileges(pstate, rel, attnames);

	options = lappend(options, makeDefElem("format", (Node *) makeString("csv"), -1));
	options = lappend(options, makeDefElem("encoding", (Node *) makeString(ls->opts.encoding), -1));
	if (ls->opts.format == LOAD_CSV)
	{
		options = lappend(options, makeDefElem("delimiter",
											   (Node *) makeString(psprintf("%c", ls->opts.delimiter)), -1));
		options = lappend(options, makeDefElem("quote",
											   (Node *) makeString(psprintf("%c", ls->opts.quote)), -1));
		options = lappend(options, makeDefElem("null", (Node *) makeString(ls->opts.null_string), -1));
		if (ls->opts.header)
			options = lappend(options, makeDefElem("header", (Node *) makeString("true"), -1));
	}

	if (active_load != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("ml.load cannot run inside another ml.load")));
	active_load = ls;
	PG_TRY();
	{
#if PG_VERSION_NUM >= 140000
		cstate = BeginCopyFrom(pstate, rel, NULL, NULL, false, load_source_cb, attnames, options);
#else
		cstate = BeginCopyFrom(pstate, rel, NULL, false, load_source_cb, attnames, options);
#endif
		rows = CopyFrom(cstate);
		EndCopyFrom(cstate);
	}
	PG_FINALLY();
	{
		active_load = NULL;
	}
	PG_END_TRY();
	return rows;
}

/*
 * ml_load is ml.load(url, into, format, options): loads CSV or JSON lines
 * from a URL into a table and returns the number of rows loaded.
 */
Datum
ml_load(PG_FUNCTION_ARGS)
{
	char	   *url = DataTextArg(fcinfo, 0, "url");
	char	   *into = DataTextArg(fcinfo, 1, "into");
	char	   *format = DataTextArg(fcinfo, 2, "format");
	Jsonb	   *options = PG_ARGISNULL(3) ? NULL : PG_GETARG_JSONB_P(3);
	LoadState  *ls = palloc0(sizeof(LoadState));
	NewTable	target;
	Record	   *header = NULL;
	Relation	rel;
	uint64		rows;

	ls->url = url;
	ls->opts.mode = MODE_APPEND;
	ls->opts.header = true;
	ls->opts.delimiter = ',';
	ls->opts.quote = '"';
	ls->opts.null_string = "";
	ls->opts.sample_rows = 1000;
	ls->opts.encoding = "UTF8";
	S3OptionsInit(&ls->opts.s3);
	if (strcmp(format, "csv") == 0)
		ls->opts.format = LOAD_CSV, ls->opts.format_given = true;
	else if (strcmp(format, "jsonl") == 0 || strcmp(format, "ndjson") == 0)
		ls->opts.format = LOAD_JSONL, ls->opts.format_given = true;
	else if (strcmp(format, "auto") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown format \"%s\"", format),
				 errhint("The formats are \"auto\", \"csv\" and \"jsonl\".")));
	JsonbForEachKey(options, "options", load_option, &ls->opts);
	if (ls->opts.delimiter == ls->opts.quote)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options \"delimiter\" and \"quote\" must differ")));

	NewTableResolve(into, "into", &target);
	if (OidIsValid(target.existing) && ls->opts.mode == MODE_CREATE)
		NewTableExistsError(&target, false);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	open_body(ls);
	record_init(&ls->rec);
	ls->rowcxt = AllocSetContextCreate(CurrentMemoryContext, "ml.load row",
									   ALLOCSET_DEFAULT_SIZES);
	initStringInfo(&ls->out);
	initStringInfo(&ls->header_raw);
	initStringInfo(&ls->tee);
	ls->passthrough = ls->teeing = ls->opts.format == LOAD_CSV && !ls->opts.skip_errors;
	ls->tee_from = 0;

	/* the header and the sample */
	if (ls->opts.format == LOAD_CSV && ls->opts.header)
	{
		if (!read_csv_record(ls, &ls->rec))
			ereport(ERROR,
					(errcode(ERRCODE_BAD_COPY_FILE_FORMAT),
					 errmsg("\"%s\" has no data", HttpUrlForDisplay(url))));
		header = record_copy(&ls->rec);
		appendBinaryStringInfo(&ls->header_raw, header->raw.data, header->raw.len);
		ls->header_pending = !ls->passthrough;
	}
	for (int i = 0; i < ls->opts.sample_rows && read_record(ls, &ls->rec); i++)
		ls->sample = lappend(ls->sample, record_copy(&ls->rec));
	ls->replay = list_head(ls->sample);
	if (ls->teeing)
	{
		appendBinaryStringInfo(&ls->tee, ls->ibuf + ls->tee_from, ls->ipos - ls->tee_from);
		ls->teeing = false;
	}
	data_columns(ls, header);

	if (!OidIsValid(target.existing))
		create_target(ls, &target);
	else if (ls->opts.mode == MODE_REPLACE)
		DataRunStatement(psprintf("TRUNCATE %s", target.qualified), SPI_OK_UTILITY);

	rel = table_openrv(makeRangeVar(get_namespace_name(target.nsp), target.relname, -1),
					   RowExclusiveLock);
	target_checks(ls, rel);
	rows = copy_into(ls, rel);
	table_close(rel, NoLock);
	HttpClose(ls->http);
	SPI_finish();

	if (ls->skipped > 0)
		ereport(NOTICE,
				(errmsg("ml.load skipped " INT64_FORMAT " malformed line%s of \"%s\"",
						ls->skipped, ls->skipped == 1 ? "" : "s", HttpUrlForDisplay(url)),
				 errdetail("The first: %s.", ls->first_skip)));
	PG_RETURN_INT64((int64) rows);
}
