-- test/data/load.sql: create and fill the sample data set tables
-- (diabetes, breast_cancer, cars, iris, wine, seattle_weather) from the CSV
-- files next to it.
--
-- Run with psql from the project root (the \copy paths are relative to it):
--   psql -X -v ON_ERROR_STOP=1 -f test/data/load.sql
-- Re-running it drops and reloads the tables. Empty CSV fields load as NULL.

\set ON_ERROR_STOP 1

SET client_min_messages = warning;
DROP TABLE IF EXISTS diabetes, breast_cancer, cars, iris, wine, seattle_weather;
RESET client_min_messages;

-- Diabetes progression (regression): ten baseline variables, target progression.
CREATE TABLE diabetes (
    age         float8,
    sex         float8,
    bmi         float8,
    bp          float8,
    s1          float8,
    s2          float8,
    s3          float8,
    s4          float8,
    s5          float8,
    s6          float8,
    progression float8
);
\copy diabetes FROM 'test/data/diabetes.csv' WITH (FORMAT csv, HEADER true)

-- Breast cancer Wisconsin (binary classification): target diagnosis.
CREATE TABLE breast_cancer (
    mean_radius             float8,
    mean_texture            float8,
    mean_perimeter          float8,
    mean_area               float8,
    mean_smoothness         float8,
    mean_compactness        float8,
    mean_concavity          float8,
    mean_concave_points     float8,
    mean_symmetry           float8,
    mean_fractal_dimension  float8,
    radius_error            float8,
    texture_error           float8,
    perimeter_error         float8,
    area_error              float8,
    smoothness_error        float8,
    compactness_error       float8,
    concavity_error         float8,
    concave_points_error    float8,
    symmetry_error          float8,
    fractal_dimension_error float8,
    worst_radius            float8,
    worst_texture           float8,
    worst_perimeter         float8,
    worst_area              float8,
    worst_smoothness        float8,
    worst_compactness       float8,
    worst_concavity         float8,
    worst_concave_points    float8,
    worst_symmetry          float8,
    worst_fractal_dimension float8,
    diagnosis               text
);
\copy breast_cancer FROM 'test/data/breast_cancer.csv' WITH (FORMAT csv, HEADER true)

-- Auto MPG (regression with mixed types and some missing values).
CREATE TABLE cars (
    name             text,
    miles_per_gallon float8,
    cylinders        int,
    displacement     float8,
    horsepower       float8,
    weight_in_lbs    int,
    acceleration     float8,
    year             date,
    origin           text
);
\copy cars FROM 'test/data/cars.csv' WITH (FORMAT csv, HEADER true)

-- Iris (multi-class classification): target species.
CREATE TABLE iris (
    sepal_length float8,
    sepal_width  float8,
    petal_length float8,
    petal_width  float8,
    species      text
);
\copy iris FROM 'test/data/iris.csv' WITH (FORMAT csv, HEADER true)

-- Wine (multi-class classification): target cultivar (0, 1 or 2).
CREATE TABLE wine (
    alcohol              float8,
    malic_acid           float8,
    ash                  float8,
    alcalinity_of_ash    float8,
    magnesium            float8,
    total_phenols        float8,
    flavanoids           float8,
    nonflavanoid_phenols float8,
    proanthocyanins      float8,
    color_intensity      float8,
    hue                  float8,
    od280_od315          float8,
    proline              float8,
    cultivar             int
);
\copy wine FROM 'test/data/wine.csv' WITH (FORMAT csv, HEADER true)

-- Seattle weather, 2012-2015 (classification: weather; dates as YYYY/MM/DD).
CREATE TABLE seattle_weather (
    date          date,
    precipitation float8,
    temp_max      float8,
    temp_min      float8,
    wind          float8,
    weather       text
);
SET DateStyle = 'ISO, YMD';
\copy seattle_weather FROM 'test/data/seattle_weather.csv' WITH (FORMAT csv, HEADER true)
RESET DateStyle;

ANALYZE diabetes, breast_cancer, cars, iris, wine, seattle_weather;

SELECT 'diabetes' AS data_set, count(*) AS rows FROM diabetes
UNION ALL SELECT 'breast_cancer', count(*) FROM breast_cancer
UNION ALL SELECT 'cars', count(*) FROM cars
UNION ALL SELECT 'iris', count(*) FROM iris
UNION ALL SELECT 'wine', count(*) FROM wine
UNION ALL SELECT 'seattle_weather', count(*) FROM seattle_weather;
