/*-------------------------------------------------------------------------
 * src/algo/endpoint.c
 *		"endpoint": a model whose predictions come from an HTTP container
 *		that speaks the SageMaker container protocol (bring your own
 *		container).
 *
 * The container answers GET <url>/ping with 200 when it is ready, and
 * POST <url>/invocations with one prediction per row of the body: text/csv
 * (one row per line) or application/json ({"instances": [[...], ...]}).
 * The answer is text (numbers, one row per line, a row's class
 * probabilities separated by commas) or JSON ({"predictions": [...]} or a
 * bare array, each element a number or, for several classes, an array).
 * A prediction is the value (regression), the positive class's
 * probability (two classes) or one probability per class (more).
 *
 * The rows sent are the model's input features after pgmaker's pipeline,
 * unscaled (text columns one-hot encoded, missing values imputed), in the
 * order ml.model_info lists them.  "Fitting" checks the URL against the
 * caller's network rights and pings the container; evaluation, the gate,
 * deployment and rollback are those of any model.  Rows are posted
 * batch_size at a time; the HTTP client keeps the connection open between
 * requests, so ml.predict row by row reuses it.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/jsonapi.h"
#include "libpq/pqformat.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/float.h"

#include "algo/algo.h"
#include "http/http.h"
#include "model/model.h"

typedef struct EndpointState
{
	char	   *url;			/* the container's base URL */
	bool		json;			/* application/json, else text/csv */
	int			batch_size;
} EndpointState;

static const HyperparamSpec endpoint_params[] = {
	{"url", HP_STRING, NULL, 0, 0, NULL, true},
	{"content_type", HP_STRING, "text/csv", 0, 0, "text/csv|application/json", false},
	{"batch_size", HP_INT, "100", 1, 100000, NULL, false},
};

/* The URL of a route of the container ("ping", "invocations"). */
static char *
route(const EndpointState *st, const char *name)
{
	size_t		n = strlen(st->url);

	return psprintf("%.*s/%s", (int) (n > 0 && st->url[n - 1] == '/' ? n - 1 : n), st->url, name);
}

static void
endpoint_fit(AlgoModel *m, TrainSet *ts, const Hyperparams *hp)
{
	EndpointState *st = palloc0(sizeof(EndpointState));
	HttpRequest req;
	long		status;

	if (HpIsNull(hp, "url"))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("algorithm \"endpoint\" needs the hyperparameter \"url\""),
				 errhint("Register a container with ml.register_endpoint(project, url, options).")));
	st->url = pstrdup(HpString(hp, "url"));
	if (pg_strncasecmp(st->url, "http://", 7) != 0 && pg_strncasecmp(st->url, "https://", 8) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("endpoint URL must be an http:// or https:// URL")));
	st->json = strcmp(HpString(hp, "content_type"), "application/json") == 0;
	st->batch_size = HpInt(hp, "batch_size");
	m->state = st;

	memset(&req, 0, sizeof(req));
	req.url = route(st, "ping");
	(void) HttpFetch(&req, &status, false);
	if (status != 200)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_EXCEPTION),
				 errmsg("endpoint \"%s\" is not ready: GET /ping answered HTTP status %ld",
						HttpUrlForDisplay(st->url), status)));
}

static void
append_number(StringInfo buf, double v)
{
	if (isnan(v) || isinf(v))
		appendStringInfoString(buf, "null");
	else
		appendStringInfoString(buf, float8out_internal(v));
}

/* The body of one request: rows [from, to) of X (column-major, ld). */
static void
build_body(const EndpointState *st, const AlgoModel *m, const double *X, int ld,
		   int from, int to, StringInfo body)
{
	resetStringInfo(body);
	if (st->json)
		appendStringInfoString(body, "{\"instances\": [");
	for (int i = from; i < to; i++)
	{
		if (st->json)
			appendStringInfoString(body, i > from ? ", [" : "[");
		for (int j = 0; j < m->p; j++)
		{
			if (j > 0)
				appendStringInfoChar(body, ',');
			append_number(body, X[i + (int64) j * ld]);
		}
		appendStringInfoString(body, st->json ? "]" : "\n");
	}
	if (st->json)
		appendStringInfoString(body, "]}");
}

/* ---------- parsing the answer ---------- */

typedef struct Answer
{
	const EndpointState *st;
	int			width;			/* numbers per prediction */
	int			rows;			/* predictions expected */
	double	   *out;
	int			got;			/* predictions read */
	int			numbers;		/* numbers of the current prediction */
	int			depth;
	int			predictions_depth;	/* array depth of the predictions */
	bool		bad;
	const char *why;
} Answer;

static void answer_fail(Answer *a, const char *why) pg_attribute_noreturn();

static void
answer_fail(Answer *a, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_CONNECTION_EXCEPTION),
			 errmsg("endpoint \"%s\" returned an unusable answer: %s",
					HttpUrlForDisplay(a->st->url), why)));
}

/* Stores the next number of the current prediction. */
static void
answer_number(Answer *a, double v)
{
	if (a->got >= a->rows)
	{
		a->got++;
		return;
	}
	if (!isfinite(v))
		answer_fail(a, "a prediction is not a finite number");
	if (a->numbers >= a->width)
		answer_fail(a, psprintf("a prediction has more than %d numbers", a->width));
	a->out[(int64) a->got * a->width + a->numbers++] = v;
}

static void
answer_end_prediction(Answer *a)
{
	if (a->got < a->rows && a->numbers != a->width)
		answer_fail(a, psprintf("a prediction has %d numbers, not %d", a->numbers, a->width));
	a->got++;
	a->numbers = 0;
}

static void
parse_text_answer(Answer *a, char *text)
{
	char	   *line = text;

	while (line && *line)
	{
		char	   *next = strchr(line, '\n');
		char	   *p;

		if (next)
			*next++ = '\0';
		p = line;
		while (*p == ' ' || *p == '\t' || *p == '\r')
			p++;
		if (*p != '\0')
		{
			for (;;)
			{
				char	   *end;
				double		v = strtod(p, &end);

				if (end == p)
					answer_fail(a, "a line is not a list of numbers");
				answer_number(a, v);
				p = end;
				while (*p == ' ' || *p == '\t' || *p == '\r')
					p++;
				if (*p == '\0')
					break;
				if (*p != ',')
					answer_fail(a, "a line is not a list of numbers");
				p++;
			}
			answer_end_prediction(a);
		}
		line = next;
	}
}

/*
 * JSON: the predictions are the elements of the first array found (the
 * top-level array, or the value of "predictions"); an element is a number
 * or an array of numbers.
 */
static ML_JSON_ACTION
answer_array_start(void *state)
{
	Answer	   *a = (Answer *) state;

	a->depth++;
	if (a->predictions_depth == 0)
		a->predictions_depth = a->depth;
	else if (a->depth > a->predictions_depth + 1)
		a->bad = true, a->why = "a prediction nests arrays";
	ML_JSON_ACTION_DONE;
}

static ML_JSON_ACTION
answer_array_end(void *state)
{
	Answer	   *a = (Answer *) state;

	if (a->predictions_depth > 0 && a->depth == a->predictions_depth + 1 && !a->bad)
		answer_end_prediction(a);
	a->depth--;
	ML_JSON_ACTION_DONE;
}

static ML_JSON_ACTION
answer_scalar(void *state, char *token, JsonTokenType tokentype)
{
	Answer	   *a = (Answer *) state;

	if (a->predictions_depth == 0 || a->depth < a->predictions_depth || a->bad)
		ML_JSON_ACTION_DONE;
	if (tokentype != JSON_TOKEN_NUMBER)
	{
		a->bad = true;
		a->why = "a prediction is not a number";
		ML_JSON_ACTION_DONE;
	}
	answer_number(a, strtod(token, NULL));
	if (a->depth == a->predictions_depth)
		answer_end_prediction(a);
	ML_JSON_ACTION_DONE;
}

static void
parse_json_answer(Answer *a, char *text, int len)
{
	JsonSemAction sem;

	memset(&sem, 0, sizeof(sem));
	sem.semstate = a;
	sem.array_start = answer_array_start;
	sem.array_end = answer_array_end;
	sem.scalar = answer_scalar;
	if (!JsonParseText(text, len, &sem))
		answer_fail(a, "the body is not valid JSON");
	if (a->bad)
		answer_fail(a, a->why);
	if (a->predictions_depth == 0)
		answer_fail(a, "the JSON holds no array of predictions");
}

static void
endpoint_predict(const AlgoModel *m, const double *X, int n, int ld, double *out)
{
	const EndpointState *st = m->state;
	int			width = AlgoOutputs(m);
	bool		binary = m->task == ML_TASK_CLASSIFICATION && m->nclasses == 2;
	StringInfoData body;
	char	   *url = route(st, "invocations");
	const char *ctype = st->json ? "application/json" : "text/csv";
	List	   *headers = list_make2(psprintf("Content-Type: %s", ctype),
									 psprintf("Accept: %s", ctype));

	initStringInfo(&body);
	for (int from = 0; from < n; from += st->batch_size)
	{
		int			to = Min(n, from + st->batch_size);
		HttpRequest req;
		StringInfo	answer;
		long		status;
		Answer		a;

		build_body(st, m, X, ld, from, to, &body);
		memset(&req, 0, sizeof(req));
		req.url = url;
		req.method = "POST";
		req.headers = headers;
		req.body = body.data;
		req.body_len = body.len;
		answer = HttpFetch(&req, &status, true);

		memset(&a, 0, sizeof(a));
		a.st = st;
		a.rows = to - from;
		a.width = binary ? 1 : width;
		a.out = palloc(sizeof(double) * (int64) a.rows * a.width);
		if (answer->len > 0 && (answer->data[0] == '{' || answer->data[0] == '['))
			parse_json_answer(&a, answer->data, answer->len);
		else
			parse_text_answer(&a, answer->data);
		if (a.got != a.rows)
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_EXCEPTION),
					 errmsg("endpoint \"%s\" returned %d predictions for %d rows",
							HttpUrlForDisplay(st->url), a.got, a.rows)));

		for (int i = 0; i < a.rows; i++)
		{
			double	   *o = out + (int64) (from + i) * width;

			if (binary)
			{
				double		p = a.out[i];

				if (p < 0 || p > 1)
					answer_fail(&a, "a probability is outside [0, 1]");
				o[0] = 1 - p;
				o[1] = p;
			}
			else
				memcpy(o, a.out + (int64) i * width, sizeof(double) * width);
		}
		pfree(a.out);
		CHECK_FOR_INTERRUPTS();
	}
}

static void
endpoint_serialize(const AlgoModel *m, StringInfo buf)
{
	const EndpointState *st = m->state;

	BlobPutString(buf, st->url);
	pq_sendbyte(buf, st->json ? 1 : 0);
	pq_sendint32(buf, st->batch_size);
}

static void
endpoint_deserialize(AlgoModel *m, BlobReader *r)
{
	EndpointState *st = palloc0(sizeof(EndpointState));

	st->url = BlobGetString(r);
	st->json = BlobGetBool(r);
	st->batch_size = BlobGetInt32(r);
	if (st->batch_size < 1)
		BlobCorrupt(r, "The endpoint's batch size is not positive.");
	m->state = st;
}

static void
endpoint_describe(const AlgoModel *m, char **feature_names, char **labels,
				  JsonbParseState **js)
{
	const EndpointState *st = m->state;

	JbKey(js, "url");
	JbString(js, st->url);
	JbKey(js, "content_type");
	JbString(js, st->json ? "application/json" : "text/csv");
	JbKey(js, "batch_size");
	JbInt(js, st->batch_size);
}

const AlgoSpec endpoint_algo = {
	.name = "endpoint",
	.tasks = ML_TASK_BIT(ML_TASK_REGRESSION) | ML_TASK_BIT(ML_TASK_CLASSIFICATION),
	.default_scale = SCALE_NONE,
	.params = endpoint_params,
	.nparams = lengthof(endpoint_params),
	.fit = endpoint_fit,
	.predict = endpoint_predict,
	.serialize = endpoint_serialize,
	.deserialize = endpoint_deserialize,
	.describe = endpoint_describe,
};
