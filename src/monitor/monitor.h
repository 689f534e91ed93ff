/*-------------------------------------------------------------------------
 * src/monitor/monitor.h
 *		Model monitoring: the baseline a model keeps of its training data,
 *		and what the monitor compares with it.
 *-------------------------------------------------------------------------
 */
#ifndef PGMAKER_MONITOR_H
#define PGMAKER_MONITOR_H

#include "pgmaker.h"

#include "catalog/catalog.h"
#include "data/data.h"
#include "prep/prep.h"

/* Numeric baselines cut the training values into this many quantile bins. */
#define MONITOR_BINS 10
/* Categorical baselines keep the fractions of this many most frequent values. */
#define MONITOR_TOP_CATEGORIES 100
/* Quantiles are read from at most this many values (an even-stride sample). */
#define MONITOR_QUANTILE_SAMPLE 100000

/*
 * MonitorBaseline describes the raw training values of every source column
 * the pipeline reads: count, null fraction, and for numbers mean, standard
 * deviation, minimum, maximum and MONITOR_BINS quantile bins (edges and
 * fractions), for text the fractions of the most frequent values and of
 * the others.  sampled says that ds is a sample of the rows read.
 */
extern Jsonb *MonitorBaseline(const DataSet *ds, const Pipeline *pl, bool sampled);

/* MonitorBin is the bin of v among the nedges ascending inner edges. */
extern int	MonitorBin(const double *edges, int nedges, double v);

/* ---------- between the files of src/monitor ---------- */

/* The checks that have thresholds. */
typedef enum CheckKind
{
	CHECK_PSI,
	CHECK_JS,
	CHECK_LINF,
	CHECK_CHI2_P,
	CHECK_NULL_INCREASE,
	CHECK_OUT_OF_RANGE,
	CHECK_UNSEEN,
	NCHECKS
} CheckKind;

/* One baseline column, and what the scan counts of it. */
typedef struct MonColumn
{
	char	   *name;			/* "col" or "col[2]" */
	char	   *source;
	int			element;
	char	   *type;			/* baseline type name */
	bool		categorical;
	double		base_null;
	int64		base_count;
	bool		empty;			/* no non-NULL value in training */
	/* numeric */
	double		min;
	double		max;
	double		edges[MONITOR_BINS - 1];
	double		fractions[MONITOR_BINS];
	/* categorical, sorted by value */
	int			ncats;
	char	  **cats;
	double	   *cat_fracs;
	double		other;
	bool		complete;		/* cats hold every training value */
	double		thresholds[NCHECKS];

	/* the source */
	bool		missing;
	char	   *source_type;
	bool		type_mismatch;
	int			out_col;		/* 1-based column of the scan, or 0 */
	ValueConverter conv;		/* of the scanned value */

	/* counts: where they start in the scan's array, and their values */
	int			offset;
	int64		n;
	int64		nulls;
	int64		bins[MONITOR_BINS];
	int64		outside;
	int64	   *cat_counts;
	int64		other_count;
	int64		unseen;
} MonColumn;

typedef struct Monitor
{
	ProjectInfo project;
	int64		model_id;
	int			ncols;
	MonColumn  *cols;
	double		thresholds[NCHECKS];
	int64		rows;
	char	   *window;			/* of captured predictions, as text */
} Monitor;

/*
 * The scan counts into one int64 array: the rows, then per column (in
 * baseline order, from its offset) n, nulls, and for numbers the values
 * outside the training range and the MONITOR_BINS bins; for text the
 * others, the unseen and one count per kept category.
 */
#define MONITOR_NUMERIC_COUNTS (3 + MONITOR_BINS)
#define MONITOR_TEXT_COUNTS(ncats) (4 + (ncats))

extern void MonitorParseBaseline(Monitor *m, Jsonb *baseline);
extern int	MonitorLayout(Monitor *m);
extern void MonitorCountValue(const MonColumn *mc, const ValueConverter *conv, int64 *counts,
							  Datum d, bool isnull);
extern void MonitorUnpack(Monitor *m, const int64 *counts);

/* capture.c: the sampled ml.predict calls */
extern bool CaptureAvailable(void);
extern void CaptureWrite(int64 model_id, double output, const char *json, Size len);
extern int64 CaptureFlush(uint64 *upto);
extern void CaptureConsumed(uint64 upto);

#endif							/* PGMAKER_MONITOR_H */
