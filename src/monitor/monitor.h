/*-------------------------------------------------------------------------
 * src/monitor/monitor.h
 *		Model monitoring: the baseline a model keeps of its training data,
 *		and what the monitor compares with it.
 *-------------------------------------------------------------------------
 */
#ifndef PGMAKER_MONITOR_H
#define PGMAKER_MONITOR_H

#include "pgmaker.h"

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

/* capture.c: the sampled ml.predict calls */
extern bool CaptureAvailable(void);
extern void CaptureWrite(int64 model_id, double output, const char *json, Size len);
extern int64 CaptureFlush(void);

#endif							/* PGMAKER_MONITOR_H */
