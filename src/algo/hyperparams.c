/*-------------------------------------------------------------------------
 * src/algo/hyperparams.c
 *		Validation of the hyperparams argument against an algorithm's
 *		declared parameters, with defaults filled in.
 *-------------------------------------------------------------------------
 */
#include "algo/algo.h"

#include <math.h>

#include "lib/stringinfo.h"
#include "utils/builtins.h"

#define DEFAULT_SEED 42

typedef struct HpParseState
{
	const AlgoSpec *spec;
	Hyperparams *hp;
} HpParseState;

static char *
valid_keys(const AlgoSpec *spec)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < spec->nparams; i++)
		appendStringInfo(&buf, "%s, ", spec->params[i].name);
	appendStringInfoString(&buf, "seed, cv, threshold");
	return buf.data;
}

static void
hp_type_error(const AlgoSpec *spec, const HyperparamSpec *ps, const char *what)
{
	static const char *const type_names[] = {"an integer", "a number", "a boolean", "a string"};

	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("hyperparameter \"%s\" of %s must be %s%s, not %s",
					ps->name, spec->name, type_names[ps->type],
					ps->nullable ? " or null" : "", what)));
}

/* Checks and stores one value; v == NULL parses ps->default_value. */
static void
hp_set(const AlgoSpec *spec, const HyperparamSpec *ps, HyperparamValue *out,
	   JsonbValue *v)
{
	double		d;

	memset(out, 0, sizeof(*out));
	if (v == NULL)
	{
		if (ps->default_value == NULL)
			out->isnull = true;
		else if (ps->type == HP_STRING)
			out->str = pstrdup(ps->default_value);
		else if (ps->type == HP_BOOL)
			out->boolean = strcmp(ps->default_value, "true") == 0;
		else
			out->num = strtod(ps->default_value, NULL);
		return;
	}

	if (v->type == jbvNull)
	{
		if (!ps->nullable)
			hp_type_error(spec, ps, "null");
		out->isnull = true;
		return;
	}

	switch (ps->type)
	{
		case HP_INT:
		case HP_FLOAT:
			if (!JsonbValueToDouble(v, &d))
				hp_type_error(spec, ps, JsonbValueTypeName(v));
			if (ps->type == HP_INT && d != floor(d))
				hp_type_error(spec, ps, "a fraction");
			if (isnan(d) || d < ps->min || d > ps->max)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("hyperparameter \"%s\" of %s must be between %g and %g, not %g",
								ps->name, spec->name, ps->min, ps->max, d)));
			out->num = d;
			break;
		case HP_BOOL:
			if (v->type != jbvBool)
				hp_type_error(spec, ps, JsonbValueTypeName(v));
			out->boolean = v->val.boolean;
			break;
		case HP_STRING:
			{
				char	   *s;
				char	   *choices;
				char	   *tok;
				char	   *save;
				bool		ok = false;

				if (v->type != jbvString)
					hp_type_error(spec, ps, JsonbValueTypeName(v));
				s = JsonbValueToCString(v);
				if (ps->choices == NULL)
				{
					/* free text, such as a URL */
					out->str = s;
					break;
				}
				choices = pstrdup(ps->choices);
				for (tok = strtok_r(choices, "|", &save); tok && !ok;
					 tok = strtok_r(NULL, "|", &save))
					ok = strcmp(tok, s) == 0;
				if (!ok)
				{
					StringInfoData listed;

					initStringInfo(&listed);
					for (const char *c = ps->choices; *c; c++)
						appendStringInfoString(&listed, *c == '|' ? ", " : (char[2]) {*c, '\0'});
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("hyperparameter \"%s\" of %s must be one of %s, not \"%s\"",
									ps->name, spec->name, listed.data, s)));
				}
				out->str = s;
				break;
			}
	}
}

static void
hp_visit(const char *key, JsonbValue *v, void *arg)
{
	HpParseState *st = arg;
	const AlgoSpec *spec = st->spec;

	if (strcmp(key, "seed") == 0)
	{
		double		d;

		if (!JsonbValueToDouble(v, &d) || d != floor(d) || d < 0 || d > (double) PG_INT32_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("hyperparameter \"seed\" must be a non-negative integer")));
		st->hp->seed = (int64) d;
		return;
	}
	if (strcmp(key, "rules") == 0)
	{
		if (v->type != jbvBinary)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("hyperparameter \"rules\" must be a JSON object of debugger rules")));
		st->hp->rules = JsonbValueToJsonb(v);
		(void) DebugRulesParse(st->hp->rules);	/* checks it now */
		return;
	}
	if (strcmp(key, "cv") == 0)
	{
		double		d;

		if (!JsonbValueToDouble(v, &d) || d != floor(d) || d < 2 || d > 100)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("hyperparameter \"cv\" must be an integer from 2 to 100")));
		st->hp->cv = (int) d;
		return;
	}
	if (strcmp(key, "threshold") == 0)
	{
		double		d;

		if (v->type == jbvString)
		{
			char	   *s = JsonbValueToCString(v);

			if (strcmp(s, "f1") != 0 && strcmp(s, "accuracy") != 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("hyperparameter \"threshold\" cannot be tuned for \"%s\"", s),
						 errhint("Tune it for \"f1\" or \"accuracy\", or give the threshold as a number.")));
			st->hp->threshold_metric = s;
			return;
		}
		if (!JsonbValueToDouble(v, &d) || !isfinite(d))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("hyperparameter \"threshold\" must be a number, \"f1\" or \"accuracy\"")));
		st->hp->threshold = d;
		return;
	}
	for (int i = 0; i < spec->nparams; i++)
	{
		if (strcmp(spec->params[i].name, key) == 0)
		{
			hp_set(spec, &spec->params[i], &st->hp->values[i], v);
			return;
		}
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown hyperparameter \"%s\" for algorithm %s", key, spec->name),
			 errhint("Valid hyperparameters are: %s.", valid_keys(spec))));
}

/*
 * HyperparamsParse validates the hyperparams jsonb for an algorithm:
 * unknown keys and wrong types are errors that say what is valid; missing
 * keys take their defaults.
 */
Hyperparams *
HyperparamsParse(const AlgoSpec *spec, Jsonb *json)
{
	Hyperparams *hp = palloc0(sizeof(Hyperparams));
	HpParseState st = {spec, hp};

	hp->spec = spec;
	hp->seed = DEFAULT_SEED;
	hp->threshold = NAN;
	hp->values = palloc0(sizeof(HyperparamValue) * Max(spec->nparams, 1));
	for (int i = 0; i < spec->nparams; i++)
		hp_set(spec, &spec->params[i], &hp->values[i], NULL);
	JsonbForEachKey(json, "hyperparams", hp_visit, &st);
	return hp;
}

/*
 * HyperparamsToJsonb returns every hyperparameter with its value, defaults
 * included (stored in ml.models.hyperparams).
 */
Jsonb *
HyperparamsToJsonb(const Hyperparams *hp)
{
	JsonbParseState *st = NULL;

	JbBeginObject(&st);
	for (int i = 0; i < hp->spec->nparams; i++)
	{
		const HyperparamSpec *ps = &hp->spec->params[i];
		const HyperparamValue *v = &hp->values[i];

		JbKey(&st, ps->name);
		if (v->isnull)
			JbNull(&st);
		else if (ps->type == HP_STRING)
			JbString(&st, v->str);
		else if (ps->type == HP_BOOL)
			JbBool(&st, v->boolean);
		else if (ps->type == HP_INT)
			JbInt(&st, (int64) v->num);
		else
			JbFloat(&st, v->num);
	}
	JbKey(&st, "seed");
	JbInt(&st, hp->seed);
	if (hp->rules)
	{
		JbKey(&st, "rules");
		JbJsonb(&st, hp->rules);
	}
	if (hp->cv > 0)
	{
		JbKey(&st, "cv");
		JbInt(&st, hp->cv);
	}
	if (hp->ensemble)
	{
		JbKey(&st, "members");
		JbBeginArray(&st);
		for (int i = 0; i < hp->ensemble->n; i++)
		{
			JbBeginObject(&st);
			JbKey(&st, "algorithm");
			JbString(&st, hp->ensemble->specs[i]->name);
			JbKey(&st, "weight");
			JbFloat(&st, hp->ensemble->weights[i]);
			JbKey(&st, "hyperparams");
			JbJsonb(&st, HyperparamsToJsonb(hp->ensemble->hps[i]));
			JbEndObject(&st);
		}
		JbEndArray(&st);
	}
	if (hp->threshold_metric)
	{
		JbKey(&st, "threshold");
		JbString(&st, hp->threshold_metric);
	}
	else if (!isnan(hp->threshold))
	{
		JbKey(&st, "threshold");
		JbFloat(&st, hp->threshold);
	}
	return JbFinishObject(&st);
}

static const HyperparamValue *
hp_find(const Hyperparams *hp, const char *name)
{
	for (int i = 0; i < hp->spec->nparams; i++)
		if (strcmp(hp->spec->params[i].name, name) == 0)
			return &hp->values[i];
	elog(ERROR, "algorithm %s has no hyperparameter \"%s\"", hp->spec->name, name);
	return NULL;				/* keep compiler quiet */
}

double
HpFloat(const Hyperparams *hp, const char *name)
{
	return hp_find(hp, name)->num;
}

int
HpInt(const Hyperparams *hp, const char *name)
{
	return (int) hp_find(hp, name)->num;
}

bool
HpBool(const Hyperparams *hp, const char *name)
{
	return hp_find(hp, name)->boolean;
}

/* Whether a nullable hyperparameter was left null. */
bool
HpIsNull(const Hyperparams *hp, const char *name)
{
	return hp_find(hp, name)->isnull;
}

/* NULL when the value is null. */
const char *
HpString(const Hyperparams *hp, const char *name)
{
	const HyperparamValue *v = hp_find(hp, name);

	return v->isnull ? NULL : v->str;
}
