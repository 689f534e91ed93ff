/*
 * test/fuzz/fuzz_load.c: the readers of ml.load (src/http/load.c), on a
 * body from the fuzzer instead of a URL: CSV records as COPY's CSV mode
 * reads them (any delimiter and quote, gzip inflated when the body starts
 * with its magic, the body served in chunks of a size the input picks),
 * JSON lines' key collection, and the field checks and type inference of
 * src/http/values.c on every field.
 *
 * Input: byte 0 picks the delimiter, byte 1 the quote, byte 2 the mode
 * (bit 0: JSON lines) and the chunk size (bits 1-3); the rest is the body.
 */
#include "../../src/http/load.c"

#include <sanitizer/asan_interface.h>

#include "shim.h"

struct HttpStream
{
	const char *data;
	size_t		len;
	size_t		pos;
	size_t		chunk;
};

/*
 * The body, a chunk at a time.  The part of the reader's buffer past what
 * was read is poisoned, so a read beyond the bytes read is caught.
 */
size_t
HttpRead(HttpStream *s, char *buf, size_t len)
{
	size_t		n = Min(Min(len, s->len - s->pos), s->chunk);

	ASAN_UNPOISON_MEMORY_REGION(buf, len);
	memcpy(buf, s->data + s->pos, n);
	ASAN_POISON_MEMORY_REGION(buf + n, len - n);
	s->pos += n;
	return n;
}

/* for the messages of read errors (the URL is the harness's own) */
char *
HttpUrlForDisplay(const char *url)
{
	return pstrdup(url);
}

typedef struct Input
{
	LoadState  *ls;
	bool		json_lines;
} Input;

static void
check_fields(Record *r)
{
	for (int i = 0; i < r->nfields; i++)
	{
		const char *field = record_field(r, i);
		char	   *f;

		if (field == NULL)
			continue;
		/* in a buffer of exactly its bytes, so reads past its end are caught */
		f = malloc(strlen(field) + 1);
		strcpy(f, field);
		(void) ValueInferMask(f);
		for (int c = CHECK_NONE; c <= CHECK_TIMESTAMP; c++)
			(void) ValueTextPasses((FieldCheck) c, f);
		free(f);
	}
}

static void
read_body(void *arg)
{
	Input	   *in = arg;
	LoadState  *ls = in->ls;

	record_init(&ls->rec);
	if (in->json_lines)
	{
		while (read_line(ls, &ls->rec))
		{
			List	   *keys = NIL;

			(void) json_collect_keys(ls->rec.raw.data, ls->rec.raw.len, &keys);
		}
		return;
	}
	while (read_csv_record(ls, &ls->rec))
		check_fields(&ls->rec);
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char delims[] = {',', ';', '\t', '|'};
	static const char quotes[] = {'"', '\''};
	static const size_t chunks[] = {1, 2, 3, 7, 64, 4096, 65536, 65536};
	HttpStream	hs;
	Input		in;
	LoadState  *ls;
	char	   *body;

	if (size < 3)
		return 0;
	body = malloc(size - 3 + 1);
	memcpy(body, data + 3, size - 3);
	hs.data = body;
	hs.len = size - 3;
	hs.pos = 0;
	hs.chunk = chunks[(data[2] >> 1) & 7];

	ls = palloc0(sizeof(LoadState));
	ls->opts.delimiter = delims[data[0] & 3];
	ls->opts.quote = quotes[data[1] & 1];
	ls->opts.null_string = "";
	ls->http = &hs;
	ls->url = "fuzz://body";
	ls->zin = palloc(LOAD_CHUNK);
	if (hs.len >= 2 && (unsigned char) body[0] == 0x1f && (unsigned char) body[1] == 0x8b)
	{
		ls->gzip = true;
		if (inflateInit2(&ls->zs, 16 + MAX_WBITS) != Z_OK)
			abort();
		ls->zs_live = true;
	}
	in.ls = ls;
	in.json_lines = (data[2] & 1) != 0;
	(void) ShimRun(read_body, &in);
	if (ls->zs_live)
		inflateEnd(&ls->zs);
	ShimFreeAll();
	free(body);
	return 0;
}
