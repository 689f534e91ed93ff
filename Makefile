# Makefile: PGXS build of the pgmaker extension, plus the project's own
# targets (deps, test, demo, bench).

EXTENSION = pgmaker
EXTVERSION = 0.1.0
MODULE_big = pgmaker

OBJS = \
	src/pgmaker.o \
	src/guc.o \
	src/catalog/catalog.o \
	src/catalog/deploy.o \
	src/data/reader.o \
	src/data/split.o \
	src/data/clean.o \
	src/data/tables.o \
	src/prep/options.o \
	src/prep/pipeline.o \
	src/prep/profile.o \
	src/prep/profile_report.o \
	src/prep/profile_agg.o \
	src/algo/registry.o \
	src/algo/hyperparams.o \
	src/algo/linear.o \
	src/algo/elastic.o \
	src/algo/logistic.o \
	src/algo/naive_bayes.o \
	src/algo/svm.o \
	src/algo/lbfgs.o \
	src/algo/xgboost.o \
	src/algo/kmeans.o \
	src/algo/pca.o \
	src/algo/ensemble.o \
	src/algo/aggregates.o \
	src/algo/logistic_step.o \
	src/algo/endpoint.o \
	src/algo/debugger.o \
	src/model/blob.o \
	src/model/export.o \
	src/model/xgb_document.o \
	src/eval/metrics.o \
	src/eval/gate.o \
	src/eval/curves.o \
	src/train/train.o \
	src/train/search.o \
	src/train/stream.o \
	src/predict/cache.o \
	src/predict/predict.o \
	src/monitor/baseline.o \
	src/monitor/monitor.o \
	src/monitor/aggregate.o \
	src/monitor/capture.o \
	src/bgw/launcher.o \
	src/bgw/worker.o \
	src/bgw/jobs.o \
	src/http/http.o \
	src/http/s3.o \
	src/http/load.o \
	src/http/values.o \
	src/http/alerts.o \
	src/rl/policy.o \
	src/rl/bandit.o

# The install script is built from each module's SQL, in dependency order.
SQL_SOURCES = \
	src/catalog/catalog.sql \
	src/data/data.sql \
	src/train/train.sql \
	src/algo/aggregates.sql \
	src/catalog/deploy.sql \
	src/bgw/jobs.sql \
	src/http/http.sql \
	src/http/alerts.sql \
	src/model/model.sql \
	src/predict/predict.sql \
	src/prep/prep.sql \
	src/monitor/monitor.sql \
	src/monitor/quality.sql \
	src/monitor/capture.sql \
	src/rl/bandit.sql \
	src/label/labeling.sql \
	src/report/report.sql \
	src/security/roles.sql

DATA_built = $(EXTENSION)--$(EXTVERSION).sql

REGRESS = setup linear logistic bayes_svm elastic xgboost explain export unsupervised telemetry pipeline clean profile profile_stats features evaluate cv search autopilot aggregates stream deploy predict errors blob jobs monitor quality debugger report bandit labeling
REGRESS_OPTS = --inputdir=. --load-extension=$(EXTENSION)

PG_CONFIG ?= pg_config
PG_CPPFLAGS = -I$(srcdir)/src -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare \
	-Wno-missing-field-initializers
SHLIB_LINK = -lxgboost -llinear -lopenblas -llapacke -lcurl -lz -lm

EXTRA_CLEAN = $(EXTENSION)--$(EXTVERSION).sql results regression.diffs regression.out report

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS does not track headers: rebuild every object when one changes.
$(OBJS): $(wildcard src/*.h src/*/*.h)

$(EXTENSION)--$(EXTVERSION).sql: $(SQL_SOURCES)
	cat $^ > $@

.PHONY: deps test demo report bench soak smith valgrind fuzz

deps:
	scripts/deps.sh

test:
	scripts/test.sh

demo:
	scripts/demo.sh

# the demo, then ml.report's page of each demo project in report/
report:
	PGMAKER_REPORT_DIR=$(CURDIR)/report scripts/demo.sh

bench:
	test/bench/run.sh

# Not part of test: pgbench predicting for 60 s, alone and while deploying.
soak:
	scripts/soak.sh

# Not part of test: sqlsmith's random SQL, only queries that call ml
# functions (SMITH_QUERIES, default 2000); fails on a crashed backend.
smith:
	scripts/smith.sh

# Not part of test: the regression suites on a server under valgrind
# (VALGRIND_SUITES); fails on any memcheck error in pgmaker's code.
valgrind:
	scripts/valgrind.sh

# Not part of test: libFuzzer harnesses for the parsers of untrusted bytes
# (FUZZ_SECONDS each, default 60); fails on any crash.
fuzz:
	scripts/fuzz.sh
