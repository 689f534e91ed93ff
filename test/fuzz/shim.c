/*-------------------------------------------------------------------------
 * test/fuzz/shim.c
 *		The few backend services pgmaker's parsers use, for running them
 *		outside a server under libFuzzer: memory from an arena freed after
 *		every input, ereport() that jumps back to the harness (an ERROR is
 *		the parser rejecting its input, which is fine), the List functions
 *		and no-op interrupt and stack checks.
 *
 * A parser that reads out of bounds, overflows or crashes is caught by
 * AddressSanitizer and UndefinedBehaviorSanitizer around it.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <setjmp.h>
#include <stdarg.h>

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "utils/memutils.h"

#include "shim.h"

/* ---------- memory: every chunk is freed when the input is done ---------- */

typedef struct Chunk
{
	struct Chunk *next;
	struct Chunk *prev;
	size_t		size;
	max_align_t pad[];
} Chunk;

static Chunk arena = {&arena, &arena, 0};

static void *
chunk_alloc(size_t size, bool zero)
{
	Chunk	   *c = malloc(sizeof(Chunk) + size);

	if (c == NULL)
		abort();
	if (zero)
		memset(c->pad, 0, size);
	c->size = size;
	c->next = arena.next;
	c->prev = &arena;
	arena.next->prev = c;
	arena.next = c;
	return c->pad;
}

static Chunk *
chunk_of(void *p)
{
	return (Chunk *) ((char *) p - offsetof(Chunk, pad));
}

void
pfree(void *p)
{
	Chunk	   *c = chunk_of(p);

	c->prev->next = c->next;
	c->next->prev = c->prev;
	free(c);
}

void *
palloc(Size size)
{
	if (!AllocSizeIsValid(size))
		ShimError();
	return chunk_alloc(size, false);
}

void *
palloc0(Size size)
{
	if (!AllocSizeIsValid(size))
		ShimError();
	return chunk_alloc(size, true);
}

void *
palloc_extended(Size size, int flags)
{
	if ((flags & MCXT_ALLOC_HUGE) ? !AllocHugeSizeIsValid(size) : !AllocSizeIsValid(size))
		ShimError();
	return chunk_alloc(size, (flags & MCXT_ALLOC_ZERO) != 0);
}

static void *
chunk_realloc(void *p, Size size)
{
	Chunk	   *c = chunk_of(p);
	void	   *n = chunk_alloc(size, false);

	memcpy(n, p, Min(c->size, size));
	pfree(p);
	return n;
}

void *
repalloc(void *p, Size size)
{
	if (!AllocSizeIsValid(size))
		ShimError();
	return chunk_realloc(p, size);
}

void *
repalloc_huge(void *p, Size size)
{
	if (!AllocHugeSizeIsValid(size))
		ShimError();
	return chunk_realloc(p, size);
}

char *
pstrdup(const char *s)
{
	return pnstrdup(s, strlen(s));
}

char *
pnstrdup(const char *s, Size len)
{
	char	   *d;

	len = strnlen(s, len);
	d = palloc(len + 1);
	memcpy(d, s, len);
	d[len] = '\0';
	return d;
}

/* what frontend code in libpgcommon calls instead */
void *
pg_malloc(size_t size)
{
	return palloc(size);
}

void *
pg_malloc0(size_t size)
{
	return palloc0(size);
}

void *
pg_malloc_extended(size_t size, int flags)
{
	return palloc_extended(size, flags);
}

void *
pg_realloc(void *p, size_t size)
{
	return p ? repalloc(p, size) : palloc(size);
}

char *
pg_strdup(const char *s)
{
	return pstrdup(s);
}

void
pg_free(void *p)
{
	if (p)
		pfree(p);
}

/* reset callbacks (XGBoost handles are freed by one), run before the memory goes */
static MemoryContextCallback *callbacks;

void
MemoryContextRegisterResetCallback(MemoryContext context, MemoryContextCallback *cb)
{
	cb->next = callbacks;
	callbacks = cb;
}

void
ShimFreeAll(void)
{
	while (callbacks)
	{
		MemoryContextCallback *cb = callbacks;

		callbacks = cb->next;
		cb->func(cb->arg);
	}
	while (arena.next != &arena)
		pfree(arena.next->pad);
}

/* ---------- errors ---------- */

/*
 * As in the server, an ERROR jumps to the innermost PG_TRY, whose frame is
 * PG_exception_stack; ShimRun is the outermost one.  Messages are
 * formatted, so a bad format or argument is caught too.
 */
sigjmp_buf *PG_exception_stack = NULL;
ErrorContextCallback *error_context_stack = NULL;

static int	shim_depth;			/* errors being reported: 0 or 1 */

bool
ShimRun(void (*fn) (void *), void *arg)
{
	sigjmp_buf	jb;
	sigjmp_buf *save = PG_exception_stack;
	bool		ok;

	PG_exception_stack = &jb;
	if (sigsetjmp(jb, 0) == 0)
	{
		fn(arg);
		ok = true;
	}
	else
		ok = false;
	PG_exception_stack = save;
	error_context_stack = NULL;
	shim_depth = 0;
	return ok;
}

void
pg_re_throw(void)
{
	if (PG_exception_stack == NULL)
		abort();				/* an error outside ShimRun */
	siglongjmp(*PG_exception_stack, 1);
}

void
ShimError(void)
{
	pg_re_throw();
}

bool
errstart(int elevel, const char *domain)
{
	if (elevel < ERROR)
		return false;			/* only errors matter here */
	shim_depth = 1;
	return true;
}

bool
errstart_cold(int elevel, const char *domain)
{
	return errstart(elevel, domain);
}

/* reached only after errstart returned true: an ERROR or worse */
void
errfinish(const char *filename, int lineno, const char *funcname)
{
	pg_re_throw();
}

static int
shim_format(const char *fmt, va_list ap)
{
	char		buf[1024];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	return 0;
}

#define SHIM_FORMATTER(name) \
int \
name(const char *fmt,...) \
{ \
	va_list		ap; \
 \
	va_start(ap, fmt); \
	shim_format(fmt, ap); \
	va_end(ap); \
	return 0; \
}

SHIM_FORMATTER(errmsg)
SHIM_FORMATTER(errmsg_internal)
SHIM_FORMATTER(errdetail)
SHIM_FORMATTER(errdetail_internal)
SHIM_FORMATTER(errhint)
SHIM_FORMATTER(errcontext_msg)

int
errcode(int sqlerrcode)
{
	return 0;
}

ErrorData *
CopyErrorData(void)
{
	ErrorData  *e = palloc0(sizeof(ErrorData));

	e->elevel = ERROR;
	e->message = pstrdup("error");
	return e;
}

void
FlushErrorState(void)
{
	shim_depth = 0;
}

/* ---------- the rest ---------- */

volatile sig_atomic_t InterruptPending = false;

void
ProcessInterrupts(void)
{
}

void
check_stack_depth(void)
{
}

int
GetDatabaseEncoding(void)
{
	return PG_UTF8;
}

List *
lappend(List *list, void *datum)
{
	if (list == NIL)
	{
		list = palloc(offsetof(List, initial_elements) + 8 * sizeof(ListCell));
		list->type = T_List;
		list->length = 0;
		list->max_length = 8;
		list->elements = list->initial_elements;
	}
	else if (list->length == list->max_length)
	{
		ListCell   *cells = palloc(sizeof(ListCell) * list->max_length * 2);

		memcpy(cells, list->elements, sizeof(ListCell) * list->length);
		if (list->elements != list->initial_elements)
			pfree(list->elements);
		list->elements = cells;
		list->max_length *= 2;
	}
	list->elements[list->length++].ptr_value = datum;
	return list;
}

void
list_free_deep(List *list)
{
	if (list == NIL)
		return;
	for (int i = 0; i < list->length; i++)
		pfree(list->elements[i].ptr_value);
	if (list->elements != list->initial_elements)
		pfree(list->elements);
	pfree(list);
}

/* the backend's, absent from the frontend libpgcommon */
char *
json_errdetail(JsonParseErrorType error, JsonLexContext *lex)
{
	return pstrdup("invalid JSON");
}

/*
 * Boolean text as the server reads it: a prefix (case-insensitive) of
 * true, false, yes, no, at least "on" or "of" of on and off, or 1 and 0.
 */
bool
parse_bool(const char *value, bool *result)
{
	size_t		len = strlen(value);
	static const struct
	{
		const char *word;
		size_t		min;
		bool		val;
	}			words[] = {{"true", 1, true}, {"false", 1, false}, {"yes", 1, true}, {"no", 1, false},
	{"on", 2, true}, {"off", 2, false}, {"1", 1, true}, {"0", 1, false}};

	for (int i = 0; i < lengthof(words); i++)
		if (len >= words[i].min && len <= strlen(words[i].word) &&
			pg_strncasecmp(value, words[i].word, len) == 0)
		{
			if (result)
				*result = words[i].val;
			return true;
		}
	if (result)
		*result = false;
	return false;
}

/*
 * The protocol-buffer reads the blob reader uses (libpq/pqformat.c is the
 * backend's); network byte order, and a read past the end is an ERROR as
 * in the server.
 */
static const char *
msg_take(StringInfo msg, int n)
{
	const char *p;

	if (n < 0 || msg->cursor + n > msg->len)
		ShimError();
	p = msg->data + msg->cursor;
	msg->cursor += n;
	return p;
}

int
pq_getmsgbyte(StringInfo msg)
{
	return (unsigned char) *msg_take(msg, 1);
}

unsigned int
pq_getmsgint(StringInfo msg, int b)
{
	const unsigned char *p = (const unsigned char *) msg_take(msg, b);
	unsigned int v = 0;

	if (b != 1 && b != 2 && b != 4)
		ShimError();
	for (int i = 0; i < b; i++)
		v = (v << 8) | p[i];
	return v;
}

int64
pq_getmsgint64(StringInfo msg)
{
	const unsigned char *p = (const unsigned char *) msg_take(msg, 8);
	uint64		v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return (int64) v;
}

float8
pq_getmsgfloat8(StringInfo msg)
{
	int64		i = pq_getmsgint64(msg);
	float8		f;

	memcpy(&f, &i, sizeof(f));
	return f;
}

const char *
pq_getmsgbytes(StringInfo msg, int datalen)
{
	return msg_take(msg, datalen);
}

void
pq_copymsgbytes(StringInfo msg, char *buf, int datalen)
{
	memcpy(buf, msg_take(msg, datalen), datalen);
}

void *
MemoryContextAllocHuge(MemoryContext context, Size size)
{
	return palloc_extended(size, MCXT_ALLOC_HUGE);
}

bool
pg_verifymbstr(const char *mbstr, int len, bool noError)
{
	if (pg_encoding_verifymbstr(PG_UTF8, mbstr, len) == len)
		return true;
	if (noError)
		return false;
	ShimError();
}
