-- src/report/report.sql
-- ml.report: one self-contained HTML page about a project, its plots drawn
-- as inline SVG from what the catalog already holds (no script, no
-- stylesheet or font from elsewhere, no network).

-- Text made safe for HTML.
CREATE FUNCTION ml._html(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT replace(replace(replace(replace(coalesce(t, ''), '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;')
$$;

-- A number for SVG coordinates: fixed, short.
CREATE FUNCTION ml._svg_num(x float8) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT to_char(round(x::numeric, 2), 'FM9999990.00')
$$;

-- An HTML table of rows (a jsonb array of objects, keys in the order given).
CREATE FUNCTION ml._html_table(rows jsonb, columns text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT '<table><thead><tr>'
       || (SELECT string_agg('<th>' || ml._html(c) || '</th>', '' ORDER BY o) FROM unnest(columns) WITH ORDINALITY u(c, o))
       || '</tr></thead><tbody>'
       || coalesce((SELECT string_agg('<tr>' || (SELECT string_agg('<td>' || ml._html(r ->> c) || '</td>', '' ORDER BY o)
                                                   FROM unnest(columns) WITH ORDINALITY u(c, o)) || '</tr>', '' ORDER BY n)
                      FROM jsonb_array_elements(rows) WITH ORDINALITY e(r, n)), '')
       || '</tbody></table>'
$$;

-- A line chart: series is a jsonb array of {"name", "points": [[x, y], ...]}.
CREATE FUNCTION ml._svg_lines(series jsonb, x_label text, y_label text,
                              diagonal boolean DEFAULT false) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w constant float8 := 420; h constant float8 := 260; m constant float8 := 40;
    x0 float8; x1 float8; y0 float8; y1 float8;
    out text;
    s jsonb;
    i int := 0;
    colours constant text[] := ARRAY['#1f77b4', '#d62728', '#2ca02c', '#9467bd'];
BEGIN
    SELECT min((p->>0)::float8), max((p->>0)::float8), min((p->>1)::float8), max((p->>1)::float8)
      INTO x0, x1, y0, y1
      FROM jsonb_array_elements(series) e, jsonb_array_elements(e->'points') p
     WHERE p->>0 IS NOT NULL AND p->>1 IS NOT NULL;
    IF x0 IS NULL THEN
        RETURN '<p class="empty">No points to draw.</p>';
    END IF;
    IF diagonal THEN x0 := 0; x1 := 1; y0 := 0; y1 := 1; END IF;
    IF x1 = x0 THEN x1 := x0 + 1; END IF;
    IF y1 = y0 THEN y1 := y0 + 1; END IF;
    out := format('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %s %s" width="%s" height="%s" role="img">', w, h, w, h)
        || format('<rect x="%s" y="%s" width="%s" height="%s" fill="#fff" stroke="#999"/>', m, 10, w - m - 10, h - m - 10);
    IF diagonal THEN
        out := out || format('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#bbb" stroke-dasharray="4"/>', m, h - m, w - 10, 10);
    END IF;
    FOR s IN SELECT e FROM jsonb_array_elements(series) e LOOP
        i := i + 1;
        out := out || format('<polyline class="series" fill="none" stroke="%s" stroke-width="2" points="%s"><title>%s</title></polyline>',
            colours[1 + (i - 1) % 4],
            (SELECT string_agg(ml._svg_num(m + ((p->>0)::float8 - x0) / (x1 - x0) * (w - m - 10)) || ','
                               || ml._svg_num(h - m - ((p->>1)::float8 - y0) / (y1 - y0) * (h - m - 10)), ' ' ORDER BY o)
               FROM jsonb_array_elements(s->'points') WITH ORDINALITY q(p, o)
              WHERE p->>0 IS NOT NULL AND p->>1 IS NOT NULL),
            ml._html(s->>'name'))
            || format('<text x="%s" y="%s" font-size="11" fill="%s">%s</text>', w - 150, 24 + 14 * i, colours[1 + (i - 1) % 4], ml._html(s->>'name'));
    END LOOP;
    RETURN out
        || format('<text x="%s" y="%s" font-size="11">%s</text>', w / 2, h - 8, ml._html(x_label))
        || format('<text x="4" y="20" font-size="11">%s</text>', ml._html(y_label))
        || format('<text x="%s" y="%s" font-size="10">%s</text><text x="%s" y="%s" font-size="10" text-anchor="end">%s</text>',
                  m, h - m + 14, ml._svg_num(x0), w - 10, h - m + 14, ml._svg_num(x1))
        || format('<text x="%s" y="%s" font-size="10" text-anchor="end">%s</text><text x="%s" y="%s" font-size="10" text-anchor="end">%s</text>',
                  m - 2, h - m, ml._svg_num(y0), m - 2, 18, ml._svg_num(y1))
        || '</svg>';
END
$$;

-- A scatter plot of [[x, y], ...], with the line y = x when asked.
CREATE FUNCTION ml._svg_scatter(points jsonb, x_label text, y_label text, identity boolean) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w constant float8 := 420; h constant float8 := 260; m constant float8 := 40;
    lo float8; hi float8; y0 float8; y1 float8;
    out text;
BEGIN
    SELECT min((p->>0)::float8), max((p->>0)::float8), min((p->>1)::float8), max((p->>1)::float8)
      INTO lo, hi, y0, y1 FROM jsonb_array_elements(points) p;
    IF lo IS NULL THEN
        RETURN '<p class="empty">No points to draw.</p>';
    END IF;
    IF identity THEN lo := least(lo, y0); hi := greatest(hi, y1); y0 := lo; y1 := hi; END IF;
    IF hi = lo THEN hi := lo + 1; END IF;
    IF y1 = y0 THEN y1 := y0 + 1; END IF;
    out := format('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %s %s" width="%s" height="%s" role="img">', w, h, w, h)
        || format('<rect x="%s" y="10" width="%s" height="%s" fill="#fff" stroke="#999"/>', m, w - m - 10, h - m - 10);
    IF identity THEN
        out := out || format('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#bbb" stroke-dasharray="4"/>', m, h - m, w - 10, 10);
    ELSE
        out := out || format('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#bbb" stroke-dasharray="4"/>',
                             m, ml._svg_num(h - m - (0 - y0) / (y1 - y0) * (h - m - 10)),
                             w - 10, ml._svg_num(h - m - (0 - y0) / (y1 - y0) * (h - m - 10)));
    END IF;
    out := out || (SELECT string_agg(format('<circle class="point" cx="%s" cy="%s" r="2.5" fill="#1f77b4" fill-opacity="0.6"/>',
                                            ml._svg_num(m + ((p->>0)::float8 - lo) / (hi - lo) * (w - m - 10)),
                                            ml._svg_num(h - m - ((p->>1)::float8 - y0) / (y1 - y0) * (h - m - 10))), '')
                     FROM jsonb_array_elements(points) p);
    RETURN out
        || format('<text x="%s" y="%s" font-size="11">%s</text>', w / 2, h - 8, ml._html(x_label))
        || format('<text x="4" y="20" font-size="11">%s</text>', ml._html(y_label))
        || '</svg>';
END
$$;

-- Horizontal bars of labels and values, with a threshold line when given.
CREATE FUNCTION ml._svg_bars(labels text[], vals float8[], threshold float8 DEFAULT NULL) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n int := coalesce(array_length(labels, 1), 0);
    w constant float8 := 420; left_ constant float8 := 150; bh constant float8 := 18;
    top float8;
    out text;
BEGIN
    IF n = 0 THEN
        RETURN '<p class="empty">Nothing to draw.</p>';
    END IF;
    SELECT greatest(max(abs(v)), coalesce(threshold, 0)) INTO top FROM unnest(vals) v;
    IF top IS NULL OR top = 0 THEN top := 1; END IF;
    out := format('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %s %s" width="%s" height="%s" role="img">',
                  w, n * bh + 20, w, n * bh + 20);
    FOR i IN 1 .. n LOOP
        out := out || format('<text x="%s" y="%s" font-size="11" text-anchor="end">%s</text>', left_ - 4, (i - 1) * bh + 13, ml._html(labels[i]))
            || format('<rect class="bar" x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s</title></rect>',
                      left_, (i - 1) * bh + 3, ml._svg_num(greatest(abs(coalesce(vals[i], 0)) / top * (w - left_ - 60), 0.5)), bh - 6,
                      CASE WHEN threshold IS NOT NULL AND vals[i] > threshold THEN '#d62728' ELSE '#1f77b4' END,
                      ml._svg_num(vals[i]))
            || format('<text x="%s" y="%s" font-size="10">%s</text>',
                      ml._svg_num(left_ + abs(coalesce(vals[i], 0)) / top * (w - left_ - 60) + 4), (i - 1) * bh + 13,
                      to_char(vals[i], 'FM9999990.0999'));
    END LOOP;
    IF threshold IS NOT NULL THEN
        out := out || format('<line class="threshold" x1="%s" y1="0" x2="%s" y2="%s" stroke="#555" stroke-dasharray="3"/>',
                             ml._svg_num(left_ + threshold / top * (w - left_ - 60)),
                             ml._svg_num(left_ + threshold / top * (w - left_ - 60)), n * bh + 5);
    END IF;
    RETURN out || '</svg>';
END
$$;

-- A confusion matrix (rows actual, columns predicted) as a heat map.
CREATE FUNCTION ml._svg_heatmap(matrix jsonb, labels text[]) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k int := jsonb_array_length(matrix);
    cell constant float8 := 48; left_ constant float8 := 90;
    top float8;
    out text;
BEGIN
    SELECT max(v::float8) INTO top FROM jsonb_array_elements(matrix) r, jsonb_array_elements_text(r) v;
    IF top IS NULL OR top = 0 THEN top := 1; END IF;
    out := format('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %s %s" width="%s" height="%s" role="img">',
                  left_ + k * cell + 10, 40 + k * cell, left_ + k * cell + 10, 40 + k * cell);
    FOR i IN 0 .. k - 1 LOOP
        out := out || format('<text x="%s" y="%s" font-size="11" text-anchor="end">%s</text>', left_ - 4, 40 + i * cell + cell / 2, ml._html(labels[i + 1]))
                   || format('<text x="%s" y="30" font-size="11" text-anchor="middle">%s</text>', left_ + i * cell + cell / 2, ml._html(labels[i + 1]));
        FOR j IN 0 .. k - 1 LOOP
            out := out || format('<rect class="cell" x="%s" y="%s" width="%s" height="%s" fill="rgb(%s,%s,255)" stroke="#fff"/>',
                                 left_ + j * cell, 40 + i * cell, cell, cell,
                                 (255 - 200 * (matrix->i->>j)::float8 / top)::int, (255 - 150 * (matrix->i->>j)::float8 / top)::int)
                       || format('<text x="%s" y="%s" font-size="12" text-anchor="middle">%s</text>',
                                 left_ + j * cell + cell / 2, 40 + i * cell + cell / 2 + 4, matrix->i->>j);
        END LOOP;
    END LOOP;
    RETURN out || '<text x="4" y="14" font-size="11">actual (rows) by predicted (columns)</text></svg>';
END
$$;

CREATE FUNCTION ml.report(project text) RETURNS text
LANGUAGE plpgsql STABLE STRICT PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p record;
    live bigint;
    m record;
    info jsonb;
    html text;
    section text;
    run record;
BEGIN
    SELECT pr.id, pr.name, pr.task, pr.target, pr.owner, pr.created_at INTO p
      FROM ml.projects pr WHERE pr.name = report.project;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'project "%" does not exist', project USING ERRCODE = 'undefined_object';
    END IF;
    live := (SELECT d.model_id FROM ml.deployments d WHERE d.project_id = p.id ORDER BY d.id DESC LIMIT 1);
    SELECT mm.* INTO m FROM ml.models mm WHERE mm.id = live;

    html := '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>pgmaker: ' || ml._html(p.name) || '</title>'
        || '<style>body{font-family:sans-serif;margin:24px;color:#222;max-width:980px}h1{margin-bottom:0}'
        || 'section{margin:24px 0;padding-top:8px;border-top:1px solid #ddd}table{border-collapse:collapse;font-size:13px}'
        || 'td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}.plots{display:flex;flex-wrap:wrap;gap:16px}'
        || '.empty{color:#888}</style></head><body>'
        || '<h1>' || ml._html(p.name) || '</h1><p>A ' || ml._html(p.task) || ' project'
        || coalesce(' predicting <b>' || ml._html(p.target) || '</b>', '') || ', owned by ' || ml._html(p.owner::text)
        || ', created ' || ml._html(to_char(p.created_at, 'YYYY-MM-DD HH24:MI')) || '.</p>';

    -- overview and leaderboard
    html := html || '<section id="overview"><h2>Overview</h2>'
        || ml._html_table((SELECT jsonb_agg(to_jsonb(o)) FROM ml.overview o WHERE o.project = p.name),
                          ARRAY['project', 'task', 'live_model', 'algorithm', 'key_metric', 'score', 'models'])
        || '</section><section id="leaderboard"><h2>Leaderboard</h2>'
        || ml._html_table((SELECT jsonb_agg(to_jsonb(l) ORDER BY l.rank, l.model_id) FROM ml.leaderboard l WHERE l.project = p.name),
                          ARRAY['rank', 'model_id', 'algorithm', 'key_metric', 'score', 'evaluated_on', 'live', 'created_at'])
        || '</section>';

    IF live IS NULL THEN
        RETURN html || '<p class="empty">No model is live.</p></body></html>';
    END IF;
    info := ml.model_info(live);

    -- the live model's metrics
    html := html || '<section id="metrics"><h2>Live model ' || live || ' (' || ml._html(m.algorithm) || ')</h2>'
        || ml._html_table((SELECT jsonb_agg(jsonb_build_object('metric', k, 'hold-out', m.metrics->>k, 'training', m.train_metrics->>k) ORDER BY k)
                             FROM jsonb_object_keys(m.metrics) k
                            WHERE jsonb_typeof(m.metrics->k) IN ('number', 'string')),
                          ARRAY['metric', 'hold-out', 'training'])
        || '</section>';

    -- evaluation plots
    IF p.task = 'classification' THEN
        section := '<section id="evaluation"><h2>Evaluation</h2><div class="plots">';
        IF m.metrics ? 'confusion_matrix' THEN
            section := section || '<figure id="confusion"><figcaption>Confusion matrix (hold-out rows)</figcaption>'
                || ml._svg_heatmap(m.metrics->'confusion_matrix', ml.labels(live)) || '</figure>';
        END IF;
        IF m.curves ? 'roc' THEN
            section := section || '<figure id="roc"><figcaption>ROC curve, AUC ' || coalesce(to_char((m.metrics->>'roc_auc')::float8, 'FM0.0000'), '?') || '</figcaption>'
                || ml._svg_lines(jsonb_build_array(jsonb_build_object('name', 'ROC', 'points', m.curves->'roc')),
                                 'false positive rate', 'true positive rate', true) || '</figure>'
                || '<figure id="pr"><figcaption>Precision-recall curve</figcaption>'
                || ml._svg_lines(jsonb_build_array(jsonb_build_object('name', 'precision', 'points', m.curves->'pr')),
                                 'recall', 'precision', true) || '</figure>';
        END IF;
        html := html || section || '</div></section>';
    ELSIF p.task = 'regression' AND m.curves ? 'actual_vs_predicted' THEN
        html := html || '<section id="evaluation"><h2>Evaluation</h2><div class="plots">'
            || '<figure id="predicted"><figcaption>Predicted against actual (hold-out rows)</figcaption>'
            || ml._svg_scatter(m.curves->'actual_vs_predicted', 'actual', 'predicted', true) || '</figure>'
            || '<figure id="residuals"><figcaption>Residuals against predicted</figcaption>'
            || ml._svg_scatter((SELECT jsonb_agg(jsonb_build_array(q->1, (q->>0)::float8 - (q->>1)::float8))
                                  FROM jsonb_array_elements(m.curves->'actual_vs_predicted') q),
                               'predicted', 'actual - predicted', false) || '</figure>'
            || '</div></section>';
    END IF;

    -- what the model weighs
    IF info ? 'importance' THEN
        html := html || '<section id="features"><h2>Feature importance</h2>'
            || (SELECT ml._svg_bars(array_agg(k ORDER BY v DESC), array_agg(v ORDER BY v DESC))
                  FROM (SELECT k, (info->'importance'->>k)::float8 AS v FROM jsonb_object_keys(info->'importance') k
                         ORDER BY 2 DESC LIMIT 20) f)
            || '</section>';
    ELSIF jsonb_typeof(info->'coefficients') = 'object' THEN
        html := html || '<section id="features"><h2>Coefficients</h2>'
            || (SELECT ml._svg_bars(array_agg(k ORDER BY abs(v) DESC), array_agg(v ORDER BY abs(v) DESC))
                  FROM (SELECT k, (info->'coefficients'->>k)::float8 AS v FROM jsonb_object_keys(info->'coefficients') k
                         WHERE jsonb_typeof(info->'coefficients'->k) = 'number'
                         ORDER BY abs((info->'coefficients'->>k)::float8) DESC LIMIT 20) f)
            || '</section>';
    END IF;

    -- learning curves
    IF EXISTS (SELECT 1 FROM ml.training_log t WHERE t.model_id = live) THEN
        html := html || '<section id="learning"><h2>Learning curves</h2>'
            || ml._svg_lines(
                   (SELECT jsonb_agg(s) FROM (
                        SELECT jsonb_build_object('name', 'training loss',
                                   'points', jsonb_agg(jsonb_build_array(t.iteration, t.metrics->'train_loss') ORDER BY t.iteration)) AS s
                          FROM ml.training_log t WHERE t.model_id = live AND t.metrics ? 'train_loss'
                        HAVING count(*) > 0
                        UNION ALL
                        SELECT jsonb_build_object('name', 'validation loss',
                                   'points', jsonb_agg(jsonb_build_array(t.iteration, t.metrics->'validation_loss') ORDER BY t.iteration))
                          FROM ml.training_log t WHERE t.model_id = live AND t.metrics ? 'validation_loss'
                        HAVING count(*) > 0) x),
                   'iteration', 'loss')
            || '</section>';
    END IF;

    -- the latest monitoring run
    SELECT r.* INTO run FROM ml.monitor_runs r WHERE r.project_id = p.id ORDER BY r.id DESC LIMIT 1;
    IF FOUND THEN
        html := html || '<section id="drift"><h2>Drift (monitor run ' || run.id || ', ' || ml._html(to_char(run.ran_at, 'YYYY-MM-DD HH24:MI'))
            || ', ' || run.rows || ' rows, ' || run.violations || ' violations)</h2><p>PSI per numeric feature; the line is the threshold.</p>'
            || coalesce((SELECT ml._svg_bars(array_agg(c->>'feature' ORDER BY c->>'feature'),
                                             array_agg((c->>'value')::float8 ORDER BY c->>'feature'),
                                             max((c->>'threshold')::float8))
                           FROM jsonb_array_elements(run.results) c WHERE c->>'check' = 'psi'), '')
            || ml._html_table((SELECT jsonb_agg(c) FROM jsonb_array_elements(run.results) c WHERE (c->>'violated')::boolean),
                              ARRAY['feature', 'check', 'value', 'threshold'])
            || '</section>';
    END IF;

    -- the deployment timeline
    html := html || '<section id="deployments"><h2>Deployments</h2>'
        || (SELECT '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 720 ' || (30 + 22 * count(*)) || '" width="720" height="' || (30 + 22 * count(*)) || '" role="img">'
                   || '<line x1="20" y1="10" x2="20" y2="' || (20 + 22 * count(*)) || '" stroke="#999"/>'
                   || string_agg(format('<circle class="deployment" cx="20" cy="%s" r="5" fill="%s"/><text x="34" y="%s" font-size="12">%s: model %s (%s)%s</text>',
                                        20 + 22 * (n - 1), CASE WHEN d.model_id = live THEN '#2ca02c' ELSE '#1f77b4' END,
                                        24 + 22 * (n - 1), ml._html(to_char(d.deployed_at, 'YYYY-MM-DD HH24:MI:SS')),
                                        d.model_id, ml._html(d.strategy), coalesce(' &#8212; ' || ml._html(left(d.reason, 80)), '')), '' ORDER BY n)
                   || '</svg>'
              FROM (SELECT dd.*, row_number() OVER (ORDER BY dd.id) AS n FROM ml.deployments dd WHERE dd.project_id = p.id) d)
        || '</section>';
    RETURN html || '<footer><p>Made by ml.report at ' || ml._html(to_char(now(), 'YYYY-MM-DD HH24:MI:SS TZ')) || '.</p></footer></body></html>';
END
$$;
COMMENT ON FUNCTION ml.report(text) IS
'One self-contained HTML page about a project (inline SVG and CSS, no script, no network): overview, leaderboard, the live model''s metrics, confusion matrix, ROC and precision-recall curves or predicted-vs-actual and residuals, feature importance or coefficients, learning curves, the latest drift and the deployment timeline.';
COMMENT ON FUNCTION ml._html(text) IS 'Escapes text for HTML (internal, for ml.report).';
COMMENT ON FUNCTION ml._svg_num(float8) IS 'Formats an SVG coordinate (internal, for ml.report).';
COMMENT ON FUNCTION ml._html_table(jsonb, text[]) IS 'An HTML table of jsonb rows (internal, for ml.report).';
COMMENT ON FUNCTION ml._svg_lines(jsonb, text, text, boolean) IS 'An SVG line chart (internal, for ml.report).';
COMMENT ON FUNCTION ml._svg_scatter(jsonb, text, text, boolean) IS 'An SVG scatter plot (internal, for ml.report).';
COMMENT ON FUNCTION ml._svg_bars(text[], float8[], float8) IS 'An SVG bar chart (internal, for ml.report).';
COMMENT ON FUNCTION ml._svg_heatmap(jsonb, text[]) IS 'An SVG heat map of a confusion matrix (internal, for ml.report).';
