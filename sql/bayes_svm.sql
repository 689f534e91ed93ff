-- sql/bayes_svm.sql: Gaussian naive Bayes and the linear support vector
-- classifier (liblinear).
--
-- Reference numbers: scikit-learn 1.2.1 (Debian python3-sklearn) on the
-- rows of the same CSV files, every row:
--   GaussianNB() (var_smoothing 1e-9) on iris, unscaled (naive_bayes
--   scales nothing by default);
--   LinearSVC(C=1.0, loss='squared_hinge', dual=True, tol=1e-4,
--   max_iter=1000, random_state=0) on StandardScaler()-scaled rows
--   (linear_svm scales by default).

-- naive_bayes on iris, every row.  scikit-learn: training accuracy 0.96
-- (6 rows wrong), priors 1/3, epsilon_ 3.0955026666666677e-09; the means
-- and variances below are its theta_ and var_.
SELECT model_id AS nb_all, round((metrics ->> 'accuracy')::numeric, 6) AS accuracy
  FROM ml.train('nb_iris_all', 'iris', 'species', 'naive_bayes', test_size => 0) \gset
SELECT :'accuracy' AS training_accuracy;
SELECT info -> 'priors' AS priors, info -> 'class_count' AS class_count,
       abs((info ->> 'epsilon')::float8 / 3.0955026666666677e-09 - 1) < 1e-9 AS epsilon_ok
  FROM ml.model_info(:nb_all) info;
SELECT r.label, r.feature,
       abs((info -> 'means' -> r.label ->> r.feature)::float8 / r.theta - 1) < 1e-9 AS mean_ok,
       abs((info -> 'variances' -> r.label ->> r.feature)::float8 / r.var - 1) < 1e-9 AS variance_ok
  FROM ml.model_info(:nb_all) info,
       (VALUES ('setosa', 'sepal_length', 5.005999999999999, 0.12176400309550259),
               ('setosa', 'petal_width', 0.2459999999999999, 0.010884003095502673),
               ('versicolor', 'sepal_width', 2.7700000000000005, 0.09650000309550268),
               ('versicolor', 'petal_length', 4.26, 0.21640000309550278),
               ('virginica', 'sepal_length', 6.587999999999998, 0.39625600309550263),
               ('virginica', 'petal_width', 2.026, 0.07392400309550265))
         AS r(label, feature, theta, var)
 ORDER BY 1, 2;

-- predict_proba of the first row (setosa) and of row 71 (versicolor,
-- predicted virginica); scikit-learn's predict_proba:
--   [1.0, 1.3578426545097532e-18, 7.112835116303153e-26]
--   [2.591538028250168e-130, 0.15449408494388256, 0.8455059150561174]
SELECT abs(p[1] - 1.0) < 1e-12 AS setosa_ok,
       abs(p[2] / 1.3578426545097532e-18 - 1) < 1e-9 AS versicolor_ok,
       abs(p[3] / 7.112835116303153e-26 - 1) < 1e-9 AS virginica_ok
  FROM ml.predict_proba(:nb_all, ARRAY[5.1, 3.5, 1.4, 0.2]) p;
SELECT abs(p[1] / 2.591538028250168e-130 - 1) < 1e-9 AS setosa_ok,
       abs(p[2] / 0.15449408494388256 - 1) < 1e-9 AS versicolor_ok,
       abs(p[3] / 0.8455059150561174 - 1) < 1e-9 AS virginica_ok,
       ml.predict_label(:nb_all, ARRAY[5.9, 3.2, 4.8, 1.8]) AS label
  FROM ml.predict_proba(:nb_all, ARRAY[5.9, 3.2, 4.8, 1.8]) p;

-- the deployed model, read back from its blob, predicts the same: six
-- rows wrong, probabilities that sum to one, the label the most probable
SELECT sum((ml.predict_label('nb_iris_all', i) <> species)::int) AS wrong,
       bool_and(abs((SELECT sum(x) FROM unnest(ml.predict_proba('nb_iris_all', i)) x) - 1) < 1e-12) AS sums_to_one,
       bool_and(ml.predict_label('nb_iris_all', i) = (ml.labels('nb_iris_all'))[1 + ml.predict('nb_iris_all', i)::int]) AS label_matches
  FROM iris i;

-- var_smoothing 0.5 adds half the largest variance (petal_length's,
-- 3.0955026666666675) to every variance; scikit-learn: epsilon_
-- 1.5477513333333337, setosa sepal_length var_ 1.6695153333333337,
-- training accuracy 0.92
SELECT model_id AS nb_smooth, round((metrics ->> 'accuracy')::numeric, 6) AS accuracy
  FROM ml.train('nb_iris_smooth', 'iris', 'species', 'naive_bayes',
                hyperparams => '{"var_smoothing": 0.5}', test_size => 0) \gset
SELECT :'accuracy' AS training_accuracy,
       abs((info ->> 'epsilon')::float8 / 1.5477513333333337 - 1) < 1e-9 AS epsilon_ok,
       abs((info -> 'variances' -> 'setosa' ->> 'sepal_length')::float8 / 1.6695153333333337 - 1) < 1e-9 AS variance_ok
  FROM ml.model_info(:nb_smooth) info;

-- hold-out accuracy over the splits of seeds 1 to 10 (39 rows each):
-- the mean is 0.938, none is below 0.92
SET client_min_messages = warning;
SELECT avg(acc) >= 0.93 AS mean_accuracy_ok, min(acc) >= 0.92 AS min_accuracy_ok, count(*)
  FROM (SELECT (t.metrics ->> 'accuracy')::float8 AS acc
          FROM generate_series(1, 10) s,
               LATERAL ml.train('nb_iris_seed_' || s, 'iris', 'species', 'naive_bayes',
                                hyperparams => jsonb_build_object('seed', s), deploy => 'never') t) q;
RESET client_min_messages;

-- a feature constant within a class: the default smoothing keeps its
-- variance positive; without smoothing it is an error
CREATE TABLE nb_const AS
SELECT * FROM (VALUES (1.0, 2.0, 'a'), (1.0, 3.0, 'a'), (1.0, 2.5, 'a'),
                      (2.0, 5.0, 'b'), (3.0, 4.0, 'b'), (2.5, 4.5, 'b')) v(x1, x2, label);
SELECT (metrics ->> 'accuracy')::float8 AS accuracy
  FROM ml.train('nb_const', 'nb_const', 'label', 'naive_bayes', test_size => 0);
SELECT ml.predict_label('nb_const', ARRAY[1.0, 2.4]) AS a, ml.predict_label('nb_const', ARRAY[2.8, 4.6]) AS b;
SELECT expect_error_detail($$SELECT * FROM ml.train('nb_const0', 'nb_const', 'label', 'naive_bayes',
       hyperparams => '{"var_smoothing": 0}', test_size => 0)$$);

-- linear_svm on breast_cancer, every row.  scikit-learn: training
-- accuracy 0.9876977153, intercept 0.2114629764045449 (positive class
-- malignant) and the coefficients below.  liblinear's dual coordinate
-- descent visits the rows in a random order (seeded, in both); the
-- solutions of scikit-learn's random_state 0 to 9 differ by up to 6.5e-6
-- in any coefficient, so pgmaker's are required within 1e-4 of them.
-- Like scikit-learn with random_state 2, the solver stops at its 1000
-- iterations before tol is met: a NOTICE says so.
SELECT model_id AS svm_all, round((metrics ->> 'accuracy')::numeric, 6) AS accuracy
  FROM ml.train('svm_cancer_all', 'breast_cancer', 'diagnosis', 'linear_svm', test_size => 0) \gset
SELECT :'accuracy' AS training_accuracy;
SELECT info ->> 'positive_class' AS positive_class,
       abs((info -> 'intercept' ->> 'malignant')::float8 - 0.2114629764045449) < 1e-4 AS intercept_ok,
       info -> 'coefficients' ? 'benign' AS benign_coefficients
  FROM ml.model_info(:svm_all) info;
SELECT count(*) AS coefficients, max(abs(c.value::float8 - r.coef)) < 1e-4 AS coefficients_ok
  FROM ml.model_info(:svm_all) info,
       jsonb_each_text(info -> 'coefficients' -> 'malignant') c
       JOIN (VALUES ('mean_radius', -0.2612340268381539),
                    ('mean_texture', -0.014043077849314077),
                    ('mean_perimeter', -0.23414814193574615),
                    ('mean_area', -0.16617196701112574),
                    ('mean_smoothness', 0.17575829745899296),
                    ('mean_compactness', -0.8368755271224266),
                    ('mean_concavity', 0.655583282268059),
                    ('mean_concave_points', 0.7714319806412),
                    ('mean_symmetry', -0.09957828476634832),
                    ('mean_fractal_dimension', 0.043953074934158017),
                    ('radius_error', 0.7893702283579122),
                    ('texture_error', -0.23816634689711358),
                    ('perimeter_error', -0.09388755954794241),
                    ('area_error', 0.9230327808334392),
                    ('smoothness_error', 0.21122900666539235),
                    ('compactness_error', 0.11875041923654647),
                    ('concavity_error', -0.4839520779108308),
                    ('concave_points_error', 0.5857769666305117),
                    ('symmetry_error', -0.1941710423563096),
                    ('fractal_dimension_error', -0.8858326762388244),
                    ('worst_radius', 0.8263518399219917),
                    ('worst_texture', 0.796434339274643),
                    ('worst_perimeter', 0.5723020536989686),
                    ('worst_area', 1.020159289952796),
                    ('worst_smoothness', 0.034508494040300625),
                    ('worst_compactness', -0.32797258958033443),
                    ('worst_concavity', 0.6016579036360911),
                    ('worst_concave_points', 0.07334791351558952),
                    ('worst_symmetry', 0.44600477136338873),
                    ('worst_fractal_dimension', 0.6736745724244491)) AS r(feature, coef)
         ON r.feature = c.key;

-- the same seed gives the same model; predictions from the blob agree
-- with the training accuracy (7 rows wrong of 569)
SET client_min_messages = warning;
SELECT model_id AS svm_again
  FROM ml.train('svm_cancer_again', 'breast_cancer', 'diagnosis', 'linear_svm',
                test_size => 0, deploy => 'never') \gset
RESET client_min_messages;
SELECT a.info -> 'coefficients' = b.info -> 'coefficients' AS same_coefficients,
       a.info -> 'intercept' = b.info -> 'intercept' AS same_intercept
  FROM ml.model_info(:svm_all) a(info), ml.model_info(:svm_again) b(info);
SELECT sum((ml.predict_label('svm_cancer_all', b) <> diagnosis)::int) AS wrong,
       bool_and(ml.predict('svm_cancer_all', b) IN (0, 1)) AS index_predicted
  FROM breast_cancer b;

-- hinge loss: scikit-learn's intercept -0.040615871494776266, mean_radius
-- 0.31645228618909105 (random_state 0 to 9 differ by up to 1.8e-5);
-- class_weight balanced: intercept 0.3505845994959531, mean_radius
-- -0.29805298438330824 (scikit-learn stops at 1000 iterations too, and
-- its random_state 0 to 9 differ by up to 1.7e-4, hence 1e-3)
SELECT model_id AS svm_hinge, round((metrics ->> 'accuracy')::numeric, 6) AS accuracy
  FROM ml.train('svm_cancer_hinge', 'breast_cancer', 'diagnosis', 'linear_svm',
                hyperparams => '{"loss": "hinge"}', test_size => 0) \gset
SELECT :'accuracy' AS training_accuracy,  -- scikit-learn: 0.987698
       abs((info -> 'intercept' ->> 'malignant')::float8 - (-0.040615871494776266)) < 1e-4 AS intercept_ok,
       abs((info -> 'coefficients' -> 'malignant' ->> 'mean_radius')::float8 - 0.31645228618909105) < 1e-4 AS mean_radius_ok,
       (info ->> 'converged')::boolean AS converged
  FROM ml.model_info(:svm_hinge) info;
SELECT model_id AS svm_balanced, round((metrics ->> 'accuracy')::numeric, 6) AS accuracy
  FROM ml.train('svm_cancer_balanced', 'breast_cancer', 'diagnosis', 'linear_svm',
                hyperparams => '{"class_weight": "balanced"}', test_size => 0) \gset
SELECT :'accuracy' AS training_accuracy,  -- scikit-learn: 0.985940
       abs((info -> 'intercept' ->> 'malignant')::float8 - 0.3505845994959531) < 1e-3 AS intercept_ok,
       abs((info -> 'coefficients' -> 'malignant' ->> 'mean_radius')::float8 - (-0.29805298438330824)) < 1e-3 AS mean_radius_ok
  FROM ml.model_info(:svm_balanced) info;

-- C 0.01 converges quickly: scikit-learn's intercept -0.10874088966480429,
-- mean_radius 0.11422489775772951
SELECT model_id AS svm_c
  FROM ml.train('svm_cancer_c', 'breast_cancer', 'diagnosis', 'linear_svm',
                hyperparams => '{"C": 0.01}', test_size => 0) \gset
SELECT abs((info -> 'intercept' ->> 'malignant')::float8 - (-0.10874088966480429)) < 1e-5 AS intercept_ok,
       abs((info -> 'coefficients' -> 'malignant' ->> 'mean_radius')::float8 - 0.11422489775772951) < 1e-5 AS mean_radius_ok,
       (info ->> 'converged')::boolean AS converged
  FROM ml.model_info(:svm_c) info;

-- Hold-out accuracy over the splits of seeds 1 to 10 (142 rows each):
-- the mean is 0.978, none is below 0.96
SET client_min_messages = warning;
SELECT avg(acc) >= 0.95 AS mean_accuracy_ok, min(acc) >= 0.96 AS min_accuracy_ok, count(*)
  FROM (SELECT (t.metrics ->> 'accuracy')::float8 AS acc
          FROM generate_series(1, 10) s,
               LATERAL ml.train('svm_cancer_seed_' || s, 'breast_cancer', 'diagnosis', 'linear_svm',
                                hyperparams => jsonb_build_object('seed', s), deploy => 'never') t) q;
RESET client_min_messages;

-- one against the rest on iris.  scikit-learn: training accuracy
-- 0.946667, intercepts -0.7604227266364318, -0.36450447505935857,
-- -2.0803270519042254, petal_length -0.7091889845663211,
-- 0.7172107738911668, 1.7506964663757005 (random_state 0 to 9 differ by
-- up to 2.2e-5)
SELECT model_id AS svm_iris, round((metrics ->> 'accuracy')::numeric, 6) AS accuracy
  FROM ml.train('svm_iris_all', 'iris', 'species', 'linear_svm', test_size => 0) \gset
SELECT :'accuracy' AS training_accuracy,
       info ? 'positive_class' AS has_positive_class,
       abs((info -> 'intercept' ->> 'setosa')::float8 - (-0.7604227266364318)) < 1e-4 AS setosa_ok,
       abs((info -> 'intercept' ->> 'versicolor')::float8 - (-0.36450447505935857)) < 1e-4 AS versicolor_ok,
       abs((info -> 'intercept' ->> 'virginica')::float8 - (-2.0803270519042254)) < 1e-4 AS virginica_ok,
       abs((info -> 'coefficients' -> 'setosa' ->> 'petal_length')::float8 - (-0.7091889845663211)) < 1e-4
       AND abs((info -> 'coefficients' -> 'versicolor' ->> 'petal_length')::float8 - 0.7172107738911668) < 1e-4
       AND abs((info -> 'coefficients' -> 'virginica' ->> 'petal_length')::float8 - 1.7506964663757005) < 1e-4 AS petal_length_ok
  FROM ml.model_info(:svm_iris) info;
SELECT ml.predict_label('svm_iris_all', ARRAY[5.1, 3.5, 1.4, 0.2]) AS label,
       ml.predict('svm_iris_all', ARRAY[5.1, 3.5, 1.4, 0.2]) AS predicted;
SELECT sum((ml.predict_label('svm_iris_all', i) <> species)::int) AS wrong FROM iris i;

-- errors
SELECT expect_error($$SELECT * FROM ml.train('nb_diabetes', 'diabetes', 'progression', 'naive_bayes')$$);
SELECT expect_error($$SELECT * FROM ml.train('nb_iris_bad', 'iris', 'species', 'naive_bayes', hyperparams => '{"var_smoothing": -1}')$$);
SELECT expect_error($$SELECT * FROM ml.train('svm_bad', 'breast_cancer', 'diagnosis', 'linear_svm', hyperparams => '{"loss": "log"}')$$);
SELECT expect_error($$SELECT * FROM ml.train('svm_bad', 'breast_cancer', 'diagnosis', 'linear_svm', hyperparams => '{"C": 0}')$$);
SELECT mask_ids(expect_error($$SELECT ml.predict_proba('svm_cancer_all', b) FROM breast_cancer b LIMIT 1$$));
SELECT mask_ids(expect_error(format('SELECT ml.predict_proba(%s, ARRAY[5.1, 3.5, 1.4, 0.2])', :svm_iris)));
SELECT count(*) AS failed_projects FROM ml.projects WHERE name IN ('nb_diabetes', 'nb_iris_bad', 'svm_bad', 'nb_const0');
