-- sql/unsupervised.sql: kmeans (clustering), pca (decomposition) and
-- ml.embed.
--
-- Reference numbers: scikit-learn 1.2.1 (Debian python3-sklearn) on the
-- 150 rows of test/data/iris.csv, the four measurements as features.
--   KMeans(n_clusters=3, n_init=10) on the raw features (random_state 0,
--   1 and 42 agree): inertia 78.851441426146, adjusted Rand index against
--   species 0.7302382722834697, silhouette 0.5528190123564095, cluster
--   sizes 38, 50, 62; centres (sepal_length, sepal_width, petal_length,
--   petal_width), by petal_length:
--     5.006, 3.428, 1.4620000000000002, 0.24600000000000055
--     5.901612903225806, 2.7483870967741937, 4.393548387096774, 1.4338709677419355
--     6.85, 3.0736842105263156, 5.742105263157894, 2.0710526315789473
--   The same on StandardScaler() features: inertia 139.82049635974982 (in
--   standardised units), adjusted Rand index 0.6201351808870379,
--   silhouette 0.45994823920518635, sizes 47, 50, 53; centres back in raw
--   units (scaler.inverse_transform), by petal_length:
--     5.006, 3.4280000000000004, 1.461999999999998, 0.24600000000000055
--     5.80188679245283, 2.6735849056603778, 4.369811320754717, 1.4132075471698113
--     6.780851063829788, 3.095744680851064, 5.510638297872341, 1.9723404255319148
--   PCA(n_components=2) on the raw features: explained_variance_ratio_
--   0.9246187232017271, 0.05306648311706783 (0.9776852063187949 together);
--   explained_variance_ 4.228241706034864, 0.24267074792863344; mean_
--   5.843333333333335, 3.057333333333334, 3.758, 1.199333333333334;
--   components_
--     0.3613865917853687, -0.08452251406456868, 0.8566706059498351, 0.3582891971515508
--     0.6565887712868422, 0.7301614347850266, -0.17337266279585684, -0.0754810199174632
--   and the first row's transform -2.6841256259695374, 0.31939724658509994.
--   PCA(n_components=4): explained_variance_ratio_ 0.9246187232017271,
--   0.05306648311706783, 0.017102609807929773, 0.005212183873275374.

-- model ids in this suite start at a fixed value, whatever ran before
SELECT setval('ml.models_id_seq', 40000, false);

\set iris_x 'SELECT sepal_length, sepal_width, petal_length, petal_width FROM iris'

-- adjusted_rand is the adjusted Rand index of a clustering model's
-- clusters against the species, from their contingency table
CREATE FUNCTION adjusted_rand(model bigint) RETURNS float8
LANGUAGE sql AS $$
    WITH labelled AS (SELECT ml.predict(model, i) AS cluster, i.species FROM iris i),
         pairs AS (
           SELECT (SELECT sum(n * (n - 1) / 2.0)
                     FROM (SELECT count(*) AS n FROM labelled GROUP BY cluster, species) c) AS same_both,
                  (SELECT sum(n * (n - 1) / 2.0)
                     FROM (SELECT count(*) AS n FROM labelled GROUP BY cluster) c) AS same_cluster,
                  (SELECT sum(n * (n - 1) / 2.0)
                     FROM (SELECT count(*) AS n FROM labelled GROUP BY species) c) AS same_species,
                  (SELECT count(*) * (count(*) - 1) / 2.0 FROM labelled) AS total)
    SELECT ((same_both - same_cluster * same_species / total)
            / ((same_cluster + same_species) / 2 - same_cluster * same_species / total))::float8
      FROM pairs
$$;

-- kmeans, default preprocessing (standard scaling), every row
SELECT model_id AS km_std FROM ml.train('km_std', :'iris_x', hyperparams => '{"n_clusters": 3}',
       test_size => 0) \gset
SELECT p.task, p.target, m.algorithm, m.hyperparams,
       (SELECT array_agg(DISTINCT f.scale) FROM ml.features('km_std') f) AS scale
  FROM ml.models m JOIN ml.projects p ON p.id = m.project_id WHERE m.id = :km_std;

-- inertia (standardised units) within 1% of scikit-learn's, the same
-- silhouette and adjusted Rand index, the same cluster sizes
SELECT abs((metrics ->> 'inertia')::float8 / 139.82049635974982 - 1) < 0.01 AS inertia_within_1pct,
       round((metrics ->> 'inertia')::numeric, 4) AS inertia,
       round((metrics ->> 'silhouette')::numeric, 4) AS silhouette,
       metrics ->> 'evaluated_on' AS evaluated_on, (metrics ->> 'n')::int AS n
  FROM ml.models WHERE id = :km_std;
SELECT adjusted_rand(:km_std) >= 0.6 AS ari_at_least_0_6, round(adjusted_rand(:km_std)::numeric, 4) AS ari;
SELECT array_agg(n ORDER BY n) AS cluster_sizes
  FROM (SELECT count(*) AS n FROM iris i GROUP BY ml.predict(:km_std, i)) q;

-- what the model holds: centres by feature name (standardised units),
-- the training inertia, the best run's Lloyd steps
SELECT (info ->> 'n_clusters')::int AS n_clusters, (info ->> 'n_init')::int AS n_init,
       (info ->> 'iterations')::int BETWEEN 1 AND 300 AS iterations_ok,
       (info ->> 'converged')::boolean AS converged,
       abs((info ->> 'inertia')::float8 / (m.metrics ->> 'inertia')::float8 - 1) < 1e-9 AS inertia_is_metric,
       jsonb_array_length(info -> 'centroids') AS centroids,
       (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(info -> 'centroids' -> 0) k) AS keys
  FROM ml.model_info(:km_std) info, ml.models m WHERE m.id = :km_std;

-- centroids_raw undoes the scaling: scikit-learn's centres in raw units
-- within 1e-6, and the means of the raw rows of each cluster
WITH got AS (
       SELECT row_number() OVER (ORDER BY (c ->> 'petal_length')::float8) AS ord, c
         FROM ml.model_info(:km_std) info, jsonb_array_elements(info -> 'centroids_raw') c),
     ref(ord, sl, sw, pl, pw) AS (VALUES
       (1, 5.006, 3.4280000000000004, 1.461999999999998, 0.24600000000000055),
       (2, 5.80188679245283, 2.6735849056603778, 4.369811320754717, 1.4132075471698113),
       (3, 6.780851063829788, 3.095744680851064, 5.510638297872341, 1.9723404255319148))
SELECT ord, greatest(abs((c ->> 'sepal_length')::float8 - sl), abs((c ->> 'sepal_width')::float8 - sw),
                     abs((c ->> 'petal_length')::float8 - pl), abs((c ->> 'petal_width')::float8 - pw)) < 1e-6
       AS matches_scikit_learn
  FROM got JOIN ref USING (ord) ORDER BY ord;
WITH labelled AS (SELECT ml.predict(:km_std, i)::int AS cluster, i.* FROM iris i),
     means AS (
       SELECT cluster, avg(sepal_length) AS sl, avg(sepal_width) AS sw, avg(petal_length) AS pl,
              avg(petal_width) AS pw
         FROM labelled GROUP BY cluster)
SELECT bool_and(greatest(abs((c ->> 'sepal_length')::float8 - sl), abs((c ->> 'sepal_width')::float8 - sw),
                         abs((c ->> 'petal_length')::float8 - pl), abs((c ->> 'petal_width')::float8 - pw)) < 1e-9)
       AS centroids_are_cluster_means
  FROM means, ml.model_info(:km_std) info, LATERAL (SELECT info -> 'centroids_raw' -> cluster AS c) q;

-- ml.embed gives the three distances; ml.predict is the index of the
-- smallest; every input form agrees
SELECT count(*) AS rows, bool_and(array_length(e, 1) = 3) AS three_distances,
       bool_and(ml.predict(:km_std, i) = array_position(e, (SELECT min(v) FROM unnest(e) v)) - 1)
       AS predict_is_nearest,
       bool_and(ml.predict('km_std', i) = ml.predict(:km_std, i)) AS project_form_agrees
  FROM iris i, LATERAL (SELECT ml.embed(:km_std, i) AS e) q;
SELECT ml.embed('km_std', ARRAY[5.1, 3.5, 1.4, 0.2]) = ml.embed(:km_std, i) AS array_form,
       ml.embed('km_std', to_jsonb(i)) = ml.embed(:km_std, i) AS jsonb_form
  FROM iris i LIMIT 1;

-- kmeans on the raw features, as scikit-learn's KMeans: inertia within
-- 1%, the same centres within 1e-6, silhouette and Rand index
SELECT model_id AS km_raw FROM ml.train('km_raw', :'iris_x', hyperparams => '{"n_clusters": 3}',
       preprocess => '{"scale": "none"}', test_size => 0) \gset
SELECT abs((metrics ->> 'inertia')::float8 / 78.851441426146 - 1) < 0.01 AS inertia_within_1pct,
       round((metrics ->> 'inertia')::numeric, 4) AS inertia,
       round((metrics ->> 'silhouette')::numeric, 4) AS silhouette
  FROM ml.models WHERE id = :km_raw;
SELECT adjusted_rand(:km_raw) >= 0.6 AS ari_at_least_0_6, round(adjusted_rand(:km_raw)::numeric, 4) AS ari;
WITH got AS (
       SELECT row_number() OVER (ORDER BY (c ->> 'petal_length')::float8) AS ord, c
         FROM ml.model_info(:km_raw) info, jsonb_array_elements(info -> 'centroids') c),
     ref(ord, sl, sw, pl, pw) AS (VALUES
       (1, 5.006, 3.428, 1.4620000000000002, 0.24600000000000055),
       (2, 5.901612903225806, 2.7483870967741937, 4.393548387096774, 1.4338709677419355),
       (3, 6.85, 3.0736842105263156, 5.742105263157894, 2.0710526315789473))
SELECT ord, greatest(abs((c ->> 'sepal_length')::float8 - sl), abs((c ->> 'sepal_width')::float8 - sw),
                     abs((c ->> 'petal_length')::float8 - pl), abs((c ->> 'petal_width')::float8 - pw)) < 1e-6
       AS matches_scikit_learn
  FROM got JOIN ref USING (ord) ORDER BY ord;
SELECT info -> 'centroids' = info -> 'centroids_raw' AS unscaled_centroids_are_raw
  FROM ml.model_info(:km_raw) info;

-- a text column is one-hot encoded; its centroid values, the share of
-- the cluster's rows in each category, are the same in raw units
SELECT model_id AS km_cat FROM ml.train('km_cat', 'iris', hyperparams => '{"n_clusters": 3}',
       test_size => 0) \gset
WITH labelled AS (SELECT ml.predict(:km_cat, i)::int AS cluster, i.* FROM iris i),
     means AS (
       SELECT cluster, count(*) AS n, avg(petal_length) AS pl, avg((species = 'setosa')::int) AS setosa
         FROM labelled GROUP BY cluster)
SELECT n, abs(pl - (c ->> 'petal_length')::float8) < 1e-9 AS raw_mean_ok,
       abs(setosa - (c ->> 'species=setosa')::float8) < 1e-9 AS share_ok,
       c -> 'species=setosa' = t -> 'species=setosa' AS one_hot_unchanged
  FROM means, ml.model_info(:km_cat) info,
       LATERAL (SELECT info -> 'centroids_raw' -> cluster AS c, info -> 'centroids' -> cluster AS t) q
 ORDER BY n, pl;

-- unscaled, a distance from ml.embed is the Euclidean distance from the
-- row to the centre model_info shows
SELECT max(abs(e[c + 1] - sqrt((r.sepal_length - (ctr ->> 'sepal_length')::float8) ^ 2
                             + (r.sepal_width - (ctr ->> 'sepal_width')::float8) ^ 2
                             + (r.petal_length - (ctr ->> 'petal_length')::float8) ^ 2
                             + (r.petal_width - (ctr ->> 'petal_width')::float8) ^ 2))) < 1e-12
       AS distances_ok
  FROM iris r, ml.model_info(:km_raw) info,
       LATERAL (SELECT ml.embed(:km_raw, r) AS e) q,
       generate_series(0, 2) c, LATERAL (SELECT info -> 'centroids' -> c AS ctr) z;

-- one telemetry row per Lloyd step of the best run; the inertia never
-- rises from one step to the next
SELECT count(*) = (ml.model_info(:km_raw) ->> 'iterations')::int AS one_row_per_step,
       bool_and(train_loss IS NOT NULL AND change IS NOT NULL AND validation_loss IS NULL) AS columns_ok,
       min(iteration) = 1 AS starts_at_one
  FROM ml.training_info(:km_raw);
SELECT bool_and(train_loss <= prev * (1 + 1e-12)) AS inertia_never_rises
  FROM (SELECT train_loss, lag(train_loss) OVER (ORDER BY iteration) AS prev
          FROM ml.training_info(:km_raw)) q
 WHERE prev IS NOT NULL;

-- the same seed gives the same centres; another seed finds the same
-- optimum
SELECT model_id AS km_raw_again FROM ml.train('km_raw_again', :'iris_x', hyperparams => '{"n_clusters": 3}',
       preprocess => '{"scale": "none"}', test_size => 0) \gset
SELECT a.info -> 'centroids' = b.info -> 'centroids' AS same_seed_same_centres
  FROM ml.model_info(:km_raw) a(info), ml.model_info(:km_raw_again) b(info);
SELECT abs((t.metrics ->> 'inertia')::float8 / 78.851441426146 - 1) < 1e-9 AS seed_7_same_inertia
  FROM ml.train('km_raw_seed', :'iris_x', hyperparams => '{"n_clusters": 3, "seed": 7}',
                preprocess => '{"scale": "none"}', test_size => 0) t;

-- with no target and no algorithm: clustering by kmeans, 8 clusters,
-- measured on the hold-out rows
SELECT algorithm, (metrics ->> 'n')::int AS n, metrics ->> 'evaluated_on' AS evaluated_on,
       (metrics ->> 'silhouette')::float8 BETWEEN -1 AND 1 AS silhouette_ok,
       (metrics ->> 'inertia')::float8 > 0 AS inertia_ok
  FROM ml.train('km_default', :'iris_x');
SELECT array_length(ml.embed('km_default', ARRAY[5.1, 3.5, 1.4, 0.2]), 1) AS clusters,
       (SELECT hyperparams FROM ml.models m JOIN ml.projects p ON p.id = m.project_id
         WHERE p.name = 'km_default') AS hyperparams;

-- one cluster: its centre is the mean, its inertia the total sum of
-- squares
SELECT round((metrics ->> 'inertia')::numeric, 8) AS inertia,
       (SELECT round(sum((sepal_length - a.sl) ^ 2 + (sepal_width - a.sw) ^ 2
                          + (petal_length - a.pl) ^ 2 + (petal_width - a.pw) ^ 2)::numeric, 8)
          FROM iris, (SELECT avg(sepal_length) sl, avg(sepal_width) sw, avg(petal_length) pl,
                             avg(petal_width) pw FROM iris) a) AS total_sum_of_squares,
       metrics -> 'silhouette' AS silhouette
  FROM ml.train('km_one', :'iris_x', hyperparams => '{"n_clusters": 1}',
                preprocess => '{"scale": "none"}', test_size => 0);

-- more clusters than distinct rows: duplicates leave clusters empty,
-- which restart at far rows instead of failing
CREATE TABLE km_few AS SELECT (i % 3)::float8 AS x FROM generate_series(1, 30) i;
SELECT round((metrics ->> 'inertia')::numeric, 10) AS inertia
  FROM ml.train('km_few', 'km_few', hyperparams => '{"n_clusters": 5}', test_size => 0);

-- past ml.max_train_memory the training matrix is not materialised: each
-- pass transforms the blocks again (5,000 rows: two blocks), with the
-- same result
CREATE TABLE km_blobs AS
  SELECT (i % 3) * 4 + ((i * 7919) % 1000) / 1000.0::float8 AS x,
         (i % 3) * -2 + ((i * 104729) % 997) / 997.0::float8 AS y
    FROM generate_series(1, 5000) i;
SELECT model_id AS blobs_mem FROM ml.train('km_blobs_mem', 'km_blobs',
       hyperparams => '{"n_clusters": 3, "n_init": 2}', test_size => 0) \gset
SELECT model_id AS pca_blobs_mem FROM ml.train('pca_blobs_mem', 'km_blobs', task => 'decomposition',
       test_size => 0) \gset
SET ml.max_train_memory = '100kB';
SELECT model_id AS blobs_stream FROM ml.train('km_blobs_stream', 'km_blobs',
       hyperparams => '{"n_clusters": 3, "n_init": 2}', test_size => 0) \gset
SELECT model_id AS pca_blobs_stream FROM ml.train('pca_blobs_stream', 'km_blobs', task => 'decomposition',
       test_size => 0) \gset
RESET ml.max_train_memory;
SELECT (SELECT max(abs((a.v)::float8 - (b.v)::float8))
          FROM jsonb_array_elements(x.info -> 'centroids') WITH ORDINALITY ca(c, i),
               jsonb_array_elements(y.info -> 'centroids') WITH ORDINALITY cb(c, i),
               jsonb_each_text(ca.c) a(k, v), jsonb_each_text(cb.c) b(k, v)
         WHERE ca.i = cb.i AND a.k = b.k) < 1e-9 AS same_centroids,
       x.info -> 'iterations' = y.info -> 'iterations' AS same_iterations,
       round((x.info ->> 'inertia')::numeric, 4) AS inertia,
       abs((x.info ->> 'inertia')::float8 / (y.info ->> 'inertia')::float8 - 1) < 1e-12 AS same_inertia
  FROM ml.model_info(:blobs_mem) x(info), ml.model_info(:blobs_stream) y(info);
SELECT (SELECT max(abs((a.v)::float8 - (b.v)::float8))
          FROM jsonb_array_elements(x.info -> 'components') WITH ORDINALITY ca(c, i),
               jsonb_array_elements(y.info -> 'components') WITH ORDINALITY cb(c, i),
               jsonb_each_text(ca.c) a(k, v), jsonb_each_text(cb.c) b(k, v)
         WHERE ca.i = cb.i AND a.k = b.k) < 1e-9 AS same_components
  FROM ml.model_info(:pca_blobs_mem) x(info), ml.model_info(:pca_blobs_stream) y(info);

-- pca on the raw iris features, every row
SELECT model_id AS pca, algorithm, round((metrics ->> 'explained_variance')::numeric, 4) AS explained_variance,
       abs((metrics ->> 'explained_variance')::float8 - 0.9776852063187949) < 1e-9 AS matches_scikit_learn
  FROM ml.train('pca_iris', :'iris_x', task => 'decomposition', hyperparams => '{"n_components": 2}',
                test_size => 0) \gset
SELECT :'algorithm' AS algorithm, :'explained_variance' AS explained_variance,
       :'matches_scikit_learn' AS matches_scikit_learn;
SELECT p.task, m.hyperparams, (SELECT array_agg(DISTINCT f.scale) FROM ml.features('pca_iris') f) AS scale
  FROM ml.models m JOIN ml.projects p ON p.id = m.project_id WHERE m.id = :pca;

-- explained variance ratios to 1e-4, variances to 1e-9 relative, the
-- mean, as scikit-learn's
SELECT (info ->> 'n_components')::int AS n_components,
       ARRAY[round((info -> 'explained_variance_ratio' ->> 0)::numeric, 4),
             round((info -> 'explained_variance_ratio' ->> 1)::numeric, 4)] AS explained_variance_ratio,
       abs((info -> 'explained_variance_ratio' ->> 0)::float8 - 0.9246187232017271) < 1e-4
       AND abs((info -> 'explained_variance_ratio' ->> 1)::float8 - 0.05306648311706783) < 1e-4 AS ratios_ok,
       abs((info -> 'explained_variance' ->> 0)::float8 / 4.228241706034864 - 1) < 1e-9
       AND abs((info -> 'explained_variance' ->> 1)::float8 / 0.24267074792863344 - 1) < 1e-9 AS variances_ok,
       greatest(abs((info -> 'mean' ->> 'sepal_length')::float8 - 5.843333333333335),
                abs((info -> 'mean' ->> 'sepal_width')::float8 - 3.057333333333334),
                abs((info -> 'mean' ->> 'petal_length')::float8 - 3.758),
                abs((info -> 'mean' ->> 'petal_width')::float8 - 1.199333333333334)) < 1e-12 AS mean_ok
  FROM ml.model_info(:pca) info;

-- components equal scikit-learn's up to sign within 1e-6; they are
-- orthonormal, and the largest loading of each is positive
WITH got AS (
       SELECT c.i, f.k AS feature, f.v::float8 AS v
         FROM ml.model_info(:pca) info,
              jsonb_array_elements(info -> 'components') WITH ORDINALITY c(comp, i),
              jsonb_each_text(c.comp) f(k, v)),
     ref(i, feature, v) AS (VALUES
       (1, 'sepal_length', 0.3613865917853687), (1, 'sepal_width', -0.08452251406456868),
       (1, 'petal_length', 0.8566706059498351), (1, 'petal_width', 0.3582891971515508),
       (2, 'sepal_length', 0.6565887712868422), (2, 'sepal_width', 0.7301614347850266),
       (2, 'petal_length', -0.17337266279585684), (2, 'petal_width', -0.0754810199174632)),
     per AS (
       SELECT i, least(max(abs(got.v - ref.v)), max(abs(got.v + ref.v))) AS diff,
              sum(got.v * got.v) AS norm2,
              (array_agg(got.v ORDER BY abs(got.v) DESC))[1] AS largest
         FROM got JOIN ref USING (i, feature) GROUP BY i)
SELECT i AS component, diff < 1e-6 AS matches_up_to_sign, abs(norm2 - 1) < 1e-12 AS unit_length,
       largest > 0 AS largest_positive
  FROM per ORDER BY i;
SELECT abs(sum((a.v)::float8 * (b.v)::float8)) < 1e-12 AS orthogonal
  FROM ml.model_info(:pca) info,
       jsonb_each_text(info -> 'components' -> 0) a(k, v), jsonb_each_text(info -> 'components' -> 1) b(k, v)
 WHERE a.k = b.k;

-- ml.embed of a row is (x - mean) . component, for every row; the first
-- row's equals scikit-learn's transform up to the components' signs
SELECT count(*) AS rows, bool_and(array_length(e, 1) = 2) AS two_projections,
       max(greatest(
         abs(e[1] - ((r.sepal_length - (mu ->> 'sepal_length')::float8) * (v1 ->> 'sepal_length')::float8
                   + (r.sepal_width - (mu ->> 'sepal_width')::float8) * (v1 ->> 'sepal_width')::float8
                   + (r.petal_length - (mu ->> 'petal_length')::float8) * (v1 ->> 'petal_length')::float8
                   + (r.petal_width - (mu ->> 'petal_width')::float8) * (v1 ->> 'petal_width')::float8)),
         abs(e[2] - ((r.sepal_length - (mu ->> 'sepal_length')::float8) * (v2 ->> 'sepal_length')::float8
                   + (r.sepal_width - (mu ->> 'sepal_width')::float8) * (v2 ->> 'sepal_width')::float8
                   + (r.petal_length - (mu ->> 'petal_length')::float8) * (v2 ->> 'petal_length')::float8
                   + (r.petal_width - (mu ->> 'petal_width')::float8) * (v2 ->> 'petal_width')::float8))))
       < 1e-12 AS projections_ok
  FROM iris r, ml.model_info(:pca) info,
       LATERAL (SELECT info -> 'mean' AS mu, info -> 'components' -> 0 AS v1,
                       info -> 'components' -> 1 AS v2, ml.embed(:pca, r) AS e) q;
SELECT abs(abs(e[1]) - 2.6841256259695374) < 1e-9 AND abs(abs(e[2]) - 0.31939724658509994) < 1e-9
       AS first_row_matches,
       e = ml.embed('pca_iris', '{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}'::jsonb)
       AS jsonb_form
  FROM ml.embed(:pca, ARRAY[5.1, 3.5, 1.4, 0.2]) e;

-- the projections keep as much variance as the components explain; with
-- every component, all of it
SELECT model_id AS pca_all, round((metrics ->> 'explained_variance')::numeric, 10) AS explained_variance
  FROM ml.train('pca_all', :'iris_x', task => 'decomposition', hyperparams => '{"n_components": 4}',
                test_size => 0) \gset
SELECT :'explained_variance' AS explained_variance,
       array_agg(round(r::numeric, 6) ORDER BY i) AS ratios,
       abs(sum(r::float8) - 1) < 1e-12 AS ratios_sum_to_one
  FROM ml.model_info(:pca_all) info,
       jsonb_array_elements_text(info -> 'explained_variance_ratio') WITH ORDINALITY x(r, i);

-- task decomposition without an algorithm: pca, 2 components, measured
-- on the hold-out rows
SELECT algorithm, (metrics ->> 'n')::int AS n, metrics ->> 'evaluated_on' AS evaluated_on,
       (metrics ->> 'explained_variance')::float8 BETWEEN 0.9 AND 1 AS explained_variance_ok
  FROM ml.train('pca_default', :'iris_x', task => 'decomposition');
SELECT array_length(ml.embed('pca_default', ARRAY[5.1, 3.5, 1.4, 0.2]), 1) AS components;

-- errors
SELECT expect_error($$SELECT * FROM ml.train('unsup_bad', 'SELECT sepal_length, sepal_width, petal_length, petal_width FROM iris',
                                             hyperparams => '{"n_clusters": 500}', test_size => 0)$$);
SELECT expect_error($$SELECT * FROM ml.train('unsup_bad', 'SELECT sepal_length, sepal_width, petal_length, petal_width FROM iris',
                                             hyperparams => '{"n_clusters": 0}')$$);
SELECT expect_error($$SELECT * FROM ml.train('unsup_bad', 'SELECT sepal_length, sepal_width, petal_length, petal_width FROM iris',
                                             algorithm => 'pca', task => 'decomposition',
                                             hyperparams => '{"n_components": 10}')$$);
SELECT expect_error($$SELECT * FROM ml.train('unsup_bad', 'SELECT sepal_length, sepal_width, petal_length, petal_width FROM iris',
                                             algorithm => 'pca', task => 'clustering')$$);
SELECT expect_error($$SELECT * FROM ml.train('unsup_bad', 'iris', 'species', 'kmeans')$$);
SELECT expect_error($$SELECT * FROM ml.train('unsup_bad', 'iris', 'species', 'kmeans', task => 'clustering')$$);
SELECT expect_error($$SELECT * FROM ml.train('unsup_bad', 'iris', 'species', 'pca')$$);
SELECT expect_error($$SELECT * FROM ml.train('unsup_bad', 'diabetes', 'progression', 'pca', task => 'decomposition')$$);
SELECT count(*) AS bad_projects FROM ml.projects WHERE name = 'unsup_bad';

SELECT model_id AS reg FROM ml.train('unsup_reg', 'diabetes', 'progression', test_size => 0) \gset
SELECT mask_ids(expect_error($$SELECT ml.embed('unsup_reg', ARRAY[50, 1, 25, 90, 190, 115, 50, 4, 4.6, 90]::float8[])$$));
SELECT mask_ids(expect_error($$SELECT ml.predict('pca_iris', ARRAY[5.1, 3.5, 1.4, 0.2])$$));
SELECT mask_ids(expect_error(format($$SELECT ml.predict(%s, ARRAY[5.1, 3.5, 1.4, 0.2])$$, :pca)));
SELECT mask_ids(expect_error($$SELECT ml.predict_proba('km_std', ARRAY[5.1, 3.5, 1.4, 0.2])$$));

-- without a target, an algorithm that only decomposes implies decomposition
SELECT project, algorithm, (metrics ->> 'explained_variance')::float8 > 0.9 AS explained_ok
  FROM ml.train('u_pca_inferred', 'SELECT sepal_length, sepal_width, petal_length, petal_width FROM iris',
                algorithm => 'pca', test_size => 0);
SELECT task FROM ml.projects WHERE name = 'u_pca_inferred';
