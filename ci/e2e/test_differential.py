"""Differential tests: the same request sequences against the upstream reference and against ours.

Each case in CASES is a small, named sequence of requests; differ.run_case sends every step to a fresh
reference and a fresh ours and compares status codes and normalised /metrics after each step (see
differ.py). The status each step records is what upstream answers, so the table documents upstream's
behaviour and notices if the reference is not what we think.
Run one case:  ci/suites/30-e2e.sh -k 'case_name'
"""

import base64
import datetime
import difflib
import gzip
import json
import re
import time

import pytest

import expo
import pb
from conftest import OURS_IS_REFERENCE, ours_only
from differ import Case, _compare, _diff, b64, delete, post, put, req, run_case
J = "/metrics/job/j"
PBH = {"Content-Type": pb.CONTENT_TYPE}
SUMMARY = '# TYPE s summary\ns{quantile="0.5"} 1\ns{quantile="0.9"} 2\ns_sum 10\ns_count 5\n'
HISTOGRAM = '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 3\nh_sum 4\nh_count 3\n'

C = Case
CASES = [
    # ---------------------------------------------------------------- PUT / POST / DELETE semantics
    C("put_basic", [put(J, "foo 1\n")]),
    C("put_replaces_group", [put(J, "a 1\nb 2\n"), put(J, "c 3\n")]),
    C("post_replaces_only_named_families", [put(J, "a 1\nb 2\n"), post(J, "a 10\nc 3\n")]),
    C("post_replaces_all_series_of_named_family", [put(J, 'a{x="1"} 1\na{x="2"} 2\nb 1\n'), post(J, 'a{x="3"} 3\n')]),
    C("post_to_new_group", [post(J, "a 1\n")]),
    C("empty_put_clears_group_keeps_push_time", [put(J, "a 1\nb 2\n"), put(J, "")]),
    C("empty_put_new_group", [put(J, "")]),
    C("empty_post_only_updates_push_time", [put(J, "a 1\n"), post(J, "")]),
    C("empty_post_new_group", [post(J, "")]),
    C("whitespace_only_body", [put(J, "\n\n")]),
    C("comment_only_body", [put(J, "a 1\n"), put(J, "# just a comment\n")]),
    C("delete_group", [put(J, "a 1\n"), delete(J)]),
    C("delete_unknown_group_is_202", [delete("/metrics/job/nope")]),
    C("delete_twice", [put(J, "a 1\n"), delete(J), delete(J)]),
    C("delete_then_push_again", [put(J, "a 1\n"), delete(J), put(J, "b 1\n")]),
    C("delete_only_the_exact_group", [put(J, "a 1\n"), put(J + "/instance/i", "a 2\n"), delete(J)]),
    C("delete_group_with_labels", [put(J + "/x/1/y/2", "a 1\n"), put(J + "/x/1", "a 2\n"), delete(J + "/y/2/x/1")]),
    C("delete_bad_path_400", [put(J, "a 1\n"), delete(J + "/odd", 400)]),
    C("delete_invalid_base64_400", [delete("/metrics/job@base64/!!", 400)]),
    C("groups_are_independent", [put("/metrics/job/a", "x 1\n"), put("/metrics/job/b", "y 2\n"), put("/metrics/job/a", "z 3\n")]),
    C("post_then_put_replaces_everything", [post(J, "a 1\n"), post(J, "b 1\n"), put(J, "c 1\n")]),
    C("put_then_post_same_family_other_type", [put(J, "# TYPE a counter\na 1\n"), post(J, "# TYPE a gauge\na 2\n")]),
    C("put_other_type_replaces", [put(J, "# TYPE a counter\na 1\n"), put(J, "# TYPE a gauge\na 2\n")]),
    # ---------------------------------------------------------------- grouping labels in the path
    C("several_grouping_labels", [put(J + "/instance/i/a/1/b/2", "foo 1\n")]),
    C("grouping_label_order_irrelevant", [put(J + "/a/1/b/2", "foo 1\n"), put(J + "/b/2/a/1", "bar 1\n")]),
    C("percent_encoded_label_value", [put(J + "/a/hello%20world%21", "foo 1\n")]),
    C("percent_encoded_job", [put("/metrics/job/my%20job", "foo 1\n")]),
    C("percent_encoded_slash_splits", [put(J + "/a/x%2Fy", "foo 1\n", 400)]),
    C("percent_encoded_slash_splits_even", [put(J + "/a/x%2Fy/z", "foo 1\n")]),
    C("utf8_label_value_in_path", [put(J + "/a/%C3%A9t%C3%A9", "foo 1\n")]),
    C("base64_job", [put("/metrics/job@base64/" + b64("foo/bar"), "foo 1\n")]),
    C("base64_job_padded", [put("/metrics/job@base64/" + base64.urlsafe_b64encode(b"ab").decode(), "foo 1\n")]),
    C("base64_label_value_with_slash", [put(J + "/path@base64/" + b64("/var/tmp"), "foo 1\n")]),
    C("base64_label_padding_optional", [put(J + "/a@base64/YQ==", "foo 1\n"), put(J + "/a@base64/YQ", "bar 1\n")]),
    C("base64_url_safe_alphabet", [put(J + "/a@base64/fn5-", "foo 1\n")]),
    C("base64_standard_alphabet_rejected", [put(J + "/a@base64/fn5+", "foo 1\n", 400)]),
    C("base64_equals_alone_is_empty_value", [put(J + "/a@base64/=", "foo 1\n")]),
    C("base64_empty_value_same_group_as_plain_empty", [put(J + "/a@base64/=", "foo 1\n"), put(J + "/a/", "bar 1\n")]),
    C("empty_label_value_trailing_slash", [put(J + "/a/", "foo 1\n")]),
    C("trailing_slash_after_job", [put(J + "/", "foo 1\n")]),
    C("trailing_slash_after_labels_400", [put(J + "/a/1/", "foo 1\n", 400)]),
    C("base64_job_and_labels", [put("/metrics/job@base64/" + b64("a/b") + "/x@base64/" + b64("c/d") + "/y/e", "foo 1\n")]),
    C("base64_instance", [put(J + "/instance@base64/" + b64("host:9090/x"), "foo 1\n")]),
    C("base64_utf8", [put(J + "/a@base64/" + b64("héllo/wörld"), "foo 1\n")]),
    C("grouping_labels_override_body_labels", [put(J + "/a/1", 'foo{a="2",job="other",b="3"} 1\n')]),
    C("instance_added_when_absent", [put(J, 'foo{x="1"} 1\n')]),
    C("body_instance_kept", [put(J, 'foo{instance="body"} 1\nbar 2\n')]),
    C("path_instance_overrides_body", [put(J + "/instance/path", 'foo{instance="body"} 1\n')]),
    C("same_metric_in_two_groups", [put("/metrics/job/a", "foo 1\n"), put("/metrics/job/b", "foo 2\n")]),
    C("job_label_in_body_only", [put(J, 'foo{job="x"} 1\n')]),
    # grouping_label_le_on_histogram: upstream accepts it and exposes le twice (a bug): see test_histogram_le_grouping_label.
    C("grouping_label_quantile_on_summary_400", [put(J + "/quantile/5", SUMMARY, 400)]),
    C("query_string_ignored", [put(J + "/a/1?x=y&job=z", "foo 1\n")]),
    C("percent_encoded_label_name", [put(J + "/%61/x", "foo 1\n")]),
    C("percent_encoded_base64_suffix", [put(J + "/a%40base64/YQ", "foo 1\n")]),
    C("percent_encoded_job_base64_route", [put("/metrics/job%40base64/YQ", "foo 1\n")]),
    C("percent_encoded_percent", [put(J + "/a/100%25", "foo 1\n")]),
    C("plus_in_path_value_is_literal", [put(J + "/a/x+y", "foo 1\n")]),
    C("duplicate_label_in_path_last_wins", [put(J + "/a/1/a/2", "foo 1\n")]),
    C("chunked_body", [put(J, [b"fo", b"o 1\nbar", b" 2\n"])]),
    C("chunked_gzip_body", [put(J, [gzip.compress(b"foo 1\n")], headers={"Content-Encoding": "gzip"})]),
    # ---------------------------------------------------------------- bad paths (400 or routing)
    C("odd_number_of_components_400", [put(J + "/a", "foo 1\n", 400)]),
    C("odd_number_of_components_3_400", [put(J + "/a/1/b", "foo 1\n", 400)]),
    C("label_name_starting_with_digit_400", [put(J + "/1a/x", "foo 1\n", 400)]),
    C("label_name_with_dash_400", [put(J + "/a-b/x", "foo 1\n", 400)]),
    C("label_name_with_dot_400", [put(J + "/a.b/x", "foo 1\n", 400)]),
    C("label_name_double_underscore_400", [put(J + "/__a/x", "foo 1\n", 400)]),
    C("label_name_double_underscore_base64_400", [put(J + "/__a@base64/eA", "foo 1\n", 400)]),
    C("label_name_single_underscore_ok", [put(J + "/_a/x", "foo 1\n")]),
    C("label_name_job_in_path", [put(J + "/job/other", "foo 1\n")]),
    C("empty_label_name_redirect", [put(J + "//x", "foo 1\n", 301)]),
    C("empty_job_redirect", [put("/metrics/job/", "foo 1\n", 307)]),
    C("empty_job_base64_400", [put("/metrics/job@base64/=", "foo 1\n", 400)]),
    C("empty_job_base64_with_labels_400", [put("/metrics/job@base64/=/a/b", "foo 1\n", 400)]),
    C("invalid_base64_job_400", [put("/metrics/job@base64/Zm9v!", "foo 1\n", 400)]),
    C("invalid_base64_label_400", [put(J + "/a@base64/Z", "foo 1\n", 400)]),
    C("invalid_base64_label_chars_400", [put(J + "/a@base64/a*b", "foo 1\n", 400)]),
    C("double_slash_in_path", [put("/metrics/job//a/b", "foo 1\n", 301)]),
    C("dot_segment_in_path", [put(J + "/a/./b/c", "foo 1\n", 301)]),
    C("no_job_segment_404", [put("/metrics/job", "foo 1\n", 404)]),
    C("get_on_push_path", [req("GET", J, 405)]),
    C("patch_on_push_path", [req("PATCH", J, 405, "foo 1\n")]),
    C("unknown_path_404", [req("PUT", "/metrics/jobs/j", 404, "foo 1\n")]),
    C("invalid_percent_escape_400", [put(J + "/v/%zz", "foo 1\n", 400)]),
    C("lone_percent_400", [put(J + "/v/%", "foo 1\n", 400)]),
    C("invalid_percent_escape_in_job_400", [put("/metrics/job/j%zz", "foo 1\n", 400)]),
    C("invalid_percent_escape_existing_group_400", [put(J, "foo 1\n"), put(J + "/v/%4", "foo 2\n", 400)]),
    C("empty_segment_in_labels_redirect", [put(J + "/a//b/c", "foo 1\n", 301)]),
    # OPTIONS: 200 with Allow (compared in test_options_allow) on every path upstream routes.
    C("options_on_push_paths", [req("OPTIONS", J, 200), req("OPTIONS", J + "/a/b", 200), req("OPTIONS", "/metrics/job@base64/YQ", 200)]),
    C("options_on_metrics_and_lifecycle", [req("OPTIONS", "/metrics", 200), req("OPTIONS", "/-/quit", 200), req("OPTIONS", "/-/healthy", 200), req("OPTIONS", "/-/ready", 200)]),
    C("api_v1_redirects_to_slash", [req("GET", "/api/v1", 301), req("GET", "/api/v1/", 404)]),
    # ---------------------------------------------------------------- bodies rejected by the parser (400)
    C("sample_with_timestamp_400", [put(J, "foo 1 1234567890\n", 400)]),
    C("sample_with_timestamp_existing_group_400", [put(J, "foo 1\n"), put(J, "foo 1 1234567890\n", 400)]),
    C("cr_line_endings", [put(J, "foo 1\r\nbar 2\r\n", 400)]),
    C("cr_only_line_endings", [put(J, "foo 1\rbar 2\r", 400)]),
    C("missing_final_newline", [put(J, "foo 1", 400)]),
    C("missing_final_newline_after_comment_400", [put(J, "foo 1\n# comment", 400)]),
    C("name_without_value_400", [put(J, "foo\n", 400)]),
    C("non_numeric_value_400", [put(J, "foo bar\n", 400)]),
    C("labels_without_name_400", [put(J, '{a="b"} 1\n', 400)]),
    C("unquoted_label_value_400", [put(J, "foo{a=b} 1\n", 400)]),
    C("unterminated_label_set_400", [put(J, 'foo{a="b" 1\n', 400)]),
    C("unterminated_label_value_400", [put(J, 'foo{a="b} 1\n', 400)]),
    C("label_without_equals_400", [put(J, 'foo{a} 1\n', 400)]),
    C("type_without_type", [put(J, "# TYPE foo\nfoo 1\n")]),
    C("unknown_type_400", [put(J, "# TYPE foo bogus\nfoo 1\n", 400)]),
    C("help_without_name", [put(J, "# HELP\nfoo 1\n")]),
    C("type_after_samples_400", [put(J, "foo 1\n# TYPE foo counter\n", 400)]),
    C("second_type_line_400", [put(J, "# TYPE foo counter\n# TYPE foo gauge\nfoo 1\n", 400)]),
    C("second_help_line_400", [put(J, "# HELP foo a\n# HELP foo b\nfoo 1\n", 400)]),
    C("metric_name_starting_with_digit_400", [put(J, "1foo 1\n", 400)]),
    C("metric_name_with_dash_400", [put(J, "foo-bar 1\n", 400)]),
    C("metric_name_with_dot_400", [put(J, "foo.bar 1\n", 400)]),
    C("metric_name_with_colon_ok", [put(J, "foo:bar 1\n")]),
    C("label_name_with_dash_in_body_400", [put(J, 'foo{a-b="1"} 1\n', 400)]),
    C("label_name_double_underscore_in_body", [put(J, 'foo{__a="1"} 1\n', 400)]),
    C("invalid_escape_in_label_value_400", [put(J, 'foo{a="\\q"} 1\n', 400)]),
    C("invalid_escape_in_help_400", [put(J, "# HELP foo a\\qb\nfoo 1\n", 400)]),
    # quote_escape_in_help: v1.5.1 rejects \" in HELP, v1.11 accepts it: see test_v111_quote_escape_in_help.
    C("duplicate_label_name_400", [put(J, 'foo{a="1",a="2"} 1\n', 400)]),
    C("duplicate_series_in_push_400", [put(J, "foo 1\nfoo 2\n", 400)]),
    C("duplicate_series_labels_reordered_400", [put(J, 'foo{a="1",b="2"} 1\nfoo{b="2",a="1"} 2\n', 400)]),
    C("duplicate_series_after_grouping_override_400", [put(J + "/a/1", 'foo{a="2"} 1\nfoo{a="3"} 2\n', 400)]),
    C("duplicate_series_across_groups_400", [put(J, 'foo{x="1"} 1\n'), put(J + "/x/1", "foo 2\n", 400)]),
    C("duplicate_series_across_groups_instance_400", [put(J, 'foo{instance="i"} 1\n'), put(J + "/instance/i", "foo 2\n", 400)]),
    C("other_type_in_other_group_400", [put("/metrics/job/a", "# TYPE foo counter\nfoo 1\n"), put("/metrics/job/b", "# TYPE foo gauge\nfoo 1\n", 400)]),
    C("untyped_vs_counter_in_other_group_400", [put("/metrics/job/a", "foo 1\n"), put("/metrics/job/b", "# TYPE foo counter\nfoo 1\n", 400)]),
    C("other_type_same_group_post_ok", [put(J, "# TYPE foo counter\nfoo 1\n"), post(J, "# TYPE foo gauge\nfoo 1\n")]),
    C("summary_count_collision_other_group_400", [put("/metrics/job/a", SUMMARY), put("/metrics/job/b", "s_count 1\n", 400)]),
    C("summary_sum_line_after_summary_merges", [put(J, SUMMARY + "s_sum 1\n")]),
    C("summary_sum_collision_same_push_400", [put(J, SUMMARY + "# TYPE s_sum gauge\ns_sum 1\n", 400)]),
    C("summary_collision_reverse_400", [put("/metrics/job/a", "s_count 1\n"), put("/metrics/job/b", SUMMARY, 400)]),
    C("histogram_bucket_collision_400", [put("/metrics/job/a", HISTOGRAM), put("/metrics/job/b", "h_bucket 1\n", 400)]),
    C("histogram_count_collision_same_push_400", [put(J, HISTOGRAM + "# TYPE h_count gauge\nh_count 1\n", 400)]),
    C("histogram_collision_reverse_400", [put("/metrics/job/a", "# TYPE h_sum counter\nh_sum 1\n"), put("/metrics/job/b", HISTOGRAM, 400)]),
    C("counter_total_no_collision", [put(J, "# TYPE c counter\nc 1\nc_total 2\n")]),
    C("explicit_quantile_label_on_summary_sum", [put(J, '# TYPE s summary\ns_sum{quantile="0.5"} 1\ns_count 1\n')]),
    C("explicit_quantile_label_on_summary_count", [put(J, '# TYPE s summary\ns_sum 1\ns_count{quantile="0.5"} 1\n')]),
    C("quantile_label_on_gauge", [put(J, '# TYPE g gauge\ng{quantile="0.5"} 1\n')]),
    C("le_label_on_histogram_sum", [put(J, '# TYPE h histogram\nh_sum{le="1"} 1\nh_count 1\n')]),
    C("le_label_on_gauge", [put(J, '# TYPE g gauge\ng{le="1"} 1\n')]),
    C("invalid_quantile_value_400", [put(J, '# TYPE s summary\ns{quantile="x"} 1\n', 400)]),
    C("invalid_le_value_400", [put(J, '# TYPE h histogram\nh_bucket{le="x"} 1\n', 400)]),
    C("clash_with_own_counter_as_gauge_400", [put(J, "# TYPE pushgateway_http_requests_total gauge\npushgateway_http_requests_total 1\n", 400)]),
    C("clash_with_own_counter_as_untyped_400", [put(J, "pushgateway_http_requests_total 1\n", 400)]),
    C("own_counter_name_with_other_help_400", [put(J, '# HELP pushgateway_http_requests_total mine\n# TYPE pushgateway_http_requests_total counter\npushgateway_http_requests_total{code="200",handler="push",method="put"} 1\n', 400)]),
    C("own_counter_name_as_counter_without_help_400", [put(J, '# TYPE pushgateway_http_requests_total counter\npushgateway_http_requests_total{code="200",handler="push",method="put"} 1\n', 400)]),
    C("own_counter_name_with_own_help", [put(J, '# HELP pushgateway_http_requests_total Total HTTP requests processed by the Pushgateway, excluding scrapes.\n# TYPE pushgateway_http_requests_total counter\npushgateway_http_requests_total{code="200",handler="push",method="put"} 1\n')]),
    C("push_time_seconds_in_body_is_overwritten", [put(J, "push_time_seconds 5\nfoo 1\n")]),
    C("push_time_seconds_as_counter_in_body", [put(J, "# TYPE push_time_seconds counter\npush_time_seconds 5\n")]),
    C("push_failure_time_seconds_in_body", [put(J, "push_failure_time_seconds 5\n")]),
    # A second such push: upstream then lets the body replace its failure timestamp (a bug): see
    # test_pushed_push_failure_time_seconds_never_replaces_the_gateways.
    # ---------------------------------------------------------------- failure time bookkeeping
    C("failure_creates_target_group", [put("/metrics/job/a", "foo 1\n"), put("/metrics/job/b", "foo 1 5\n", 400)]),
    C("failure_then_success_keeps_failure_time", [put(J, "foo 1\n"), put(J, "foo 1 5\n", 400), put(J, "foo 2\n")]),
    C("failure_on_new_group_then_success", [put(J, "foo 1 5\n", 400), put(J, "foo 2\n")]),
    C("failure_on_new_group_then_delete", [put(J, "foo 1 5\n", 400), delete(J)]),
    C("parse_error_does_not_touch_store", [put(J, "foo 1\n"), put(J, "foo{\n", 400)]),
    C("path_error_does_not_touch_store", [put(J, "foo 1\n"), put(J + "/a", "foo 1\n", 400)]),
    C("failure_other_group_only", [put("/metrics/job/a", "foo 1\n"), put("/metrics/job/b", "bar 1\n"), put("/metrics/job/b", "# TYPE foo gauge\nfoo 1\n", 400)]),
    C("post_failure_keeps_group", [put(J, "a 1\nb 1\n"), post(J, "a 1\na 2\n", 400)]),
    # ---------------------------------------------------------------- metric types and text details
    C("counter_with_help", [put(J, "# HELP c A counter.\n# TYPE c counter\nc 3\n")]),
    C("gauge_with_help", [put(J, "# HELP g A gauge.\n# TYPE g gauge\ng -3.5\n")]),
    C("untyped_explicit", [put(J, "# TYPE u untyped\nu 1\n")]),
    C("help_only", [put(J, "# HELP u Only help.\nu 1\n")]),
    C("empty_help", [put(J, "# HELP u \nu 1\n")]),
    C("help_without_text", [put(J, "# HELP u\nu 1\n")]),
    C("help_and_type_without_samples", [put(J, "# HELP x Nothing.\n# TYPE x gauge\ny 1\n")]),
    C("summary", [put(J, "# HELP s A summary.\n" + SUMMARY)]),
    C("summary_with_labels", [put(J, '# TYPE s summary\ns{a="x",quantile="0.5"} 1\ns_sum{a="x"} 2\ns_count{a="x"} 3\ns{a="y",quantile="0.5"} 4\ns_sum{a="y"} 5\ns_count{a="y"} 6\n')]),
    C("summary_without_sum_count", [put(J, '# TYPE s summary\ns{quantile="0.5"} 1\n')]),
    C("summary_only_sum_count", [put(J, "# TYPE s summary\ns_sum 1\ns_count 2\n")]),
    C("summary_quantile_formatting", [put(J, '# TYPE s summary\ns{quantile="0.50"} 1\ns{quantile="1e-1"} 2\ns{quantile="+Inf"} 3\n')]),
    C("histogram", [put(J, "# HELP h A histogram.\n" + HISTOGRAM)]),
    C("histogram_without_inf_bucket", [put(J, '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="2"} 2\nh_sum 3\nh_count 4\n')]),
    C("histogram_without_sum_count", [put(J, '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\n')]),
    C("histogram_only_count", [put(J, "# TYPE h histogram\nh_count 2\n")]),
    C("histogram_le_formatting", [put(J, '# TYPE h histogram\nh_bucket{le="1.0"} 1\nh_bucket{le="0.25e1"} 2\nh_bucket{le="1e+06"} 3\nh_bucket{le="+Inf"} 4\nh_sum 1\nh_count 4\n')]),
    C("histogram_unsorted_buckets", [put(J, '# TYPE h histogram\nh_bucket{le="+Inf"} 3\nh_bucket{le="2"} 2\nh_bucket{le="1"} 1\nh_sum 1\nh_count 3\n')]),
    C("histogram_with_labels", [put(J, '# TYPE h histogram\nh_bucket{a="x",le="1"} 1\nh_bucket{a="x",le="+Inf"} 1\nh_sum{a="x"} 1\nh_count{a="x"} 1\n')]),
    # histogram_float_counts: v1.5.1 truncates to integers, v1.11 keeps floats: see test_v111_histogram_float_counts.
    C("histogram_bucket_without_le", [put(J, "# TYPE h histogram\nh_bucket 1\n")]),
    C("summary_plain_sample_without_quantile", [put(J, "# TYPE s summary\ns 1\n")]),
    C("histogram_plain_sample", [put(J, "# TYPE h histogram\nh 1\n")]),
    # gauge_histogram (TYPE): v1.5.1 and v1.11 parse it differently (v1.11 as a histogram); not compared.
    C("type_names_upper_case", [put(J, "# TYPE c COUNTER\nc 1\n# TYPE g Gauge\ng 2\n# TYPE s SUMMARY\ns_sum 1\ns_count 1\n# TYPE u UNTYPED\nu 1\n")]),
    C("escapes_in_help", [put(J, "# HELP foo back\\\\slash new\\nline \"quote\"\nfoo 1\n")]),
    C("escapes_in_label_values", [put(J, 'foo{a="back\\\\slash",b="new\\nline",c="\\"quoted\\""} 1\n')]),
    C("utf8_in_label_value_and_help", [put(J, '# HELP foo héllo ☃\nfoo{a="wörld ☃"} 1\n')]),
    C("special_values", [put(J, 'v{x="nan"} NaN\nv{x="pinf"} +Inf\nv{x="ninf"} -Inf\n')]),
    C("special_values_other_spellings", [put(J, 'v{x="1"} nan\nv{x="2"} Inf\nv{x="3"} -inf\nv{x="4"} +infinity\nv{x="5"} INF\n')]),
    C("exponent_forms", [put(J, 'v{x="1"} 1e3\nv{x="2"} 1.5E-7\nv{x="3"} -2.5e+10\nv{x="4"} 1E0\n')]),
    C("number_forms", [put(J, 'v{x="1"} +5\nv{x="2"} .5\nv{x="3"} 5.\nv{x="4"} 007\nv{x="5"} -0\nv{x="6"} 0.0\n')]),
    C("hex_float_value_400", [put(J, "v 0x1p3\n", 400)]),
    C("hex_int_value_400", [put(J, "v 0x10\n", 400)]),
    C("underscore_in_value_400", [put(J, "v 1_000\n", 400)]),
    C("value_formatting", [put(J, "".join(f'v{{x="{i}"}} {v}\n' for i, v in enumerate([
        "1000000", "100000", "123456789", "1234567890123", "0.0001", "0.00001", "0.00000015",
        "1e21", "1e20", "12345678901234567890", "3.14159265358979323846", "0.1", "1.0", "-1000000",
        "9007199254740993", "1.7976931348623157e308", "5e-324", "2.5", "100", "1e-5"])))]),
    C("counter_negative_and_nan", [put(J, '# TYPE c counter\nc{x="1"} -1\nc{x="2"} NaN\n')]),
    C("trailing_space_400", [put(J, "foo 1 \n", 400)]),
    C("trailing_tab_400", [put(J, "foo 1\t\n", 400)]),
    C("trailing_space_after_timestamp_400", [put(J, "foo 1 5 \n", 400)]),
    C("trailing_space_on_type_400", [put(J, "# TYPE foo gauge \nfoo 1\n", 400)]),
    C("trailing_space_on_help", [put(J, "# HELP foo x \nfoo 1\n")]),
    C("multiple_spaces_between_name_and_value", [put(J, "foo   1\n")]),
    C("tab_between_name_and_value", [put(J, "foo\t1\n")]),
    C("leading_whitespace", [put(J, "  foo 1\n")]),
    C("spaces_inside_label_set", [put(J, 'foo{ a = "1" , b="2" } 1\n')]),
    C("space_between_name_and_labels", [put(J, 'foo {a="1"} 1\n')]),
    C("empty_label_braces", [put(J, "foo{} 1\n")]),
    C("trailing_comma_in_label_set", [put(J, 'foo{a="1",} 1\n')]),
    C("only_comma_in_label_set_400", [put(J, "foo{,} 1\n", 400)]),
    C("empty_body_label_vs_absent", [put(J, 'm{x=""} 1\nm 2\n')]),
    C("empty_body_label_vs_absent_across_groups", [put("/metrics/job/a", 'm{x=""} 1\n'), put("/metrics/job/a/x/1", "m 2\n"), put("/metrics/job/a/y/1", 'm{y=""} 2\n')]),
    C("empty_label_value_in_body", [put(J, 'foo{a="",b="1"} 1\n')]),
    C("comments_that_are_not_help_or_type", [put(J, "# hello\n#\n#no space\n# EOF\nfoo 1\n# TYPEfoo bar\n")]),
    C("help_type_keyword_case", [put(J, "# help foo lower\n# type foo counter\nfoo 1\n")]),
    C("blank_lines", [put(J, "\nfoo 1\n\n\nbar 2\n\n")]),
    C("type_line_for_other_family_between_samples", [put(J, "a 1\n# TYPE b gauge\nb 1\na 2\n", 400)]),
    C("family_split_in_two_blocks", [put(J, 'a{x="1"} 1\nb 1\na{x="2"} 2\n')]),
    C("help_after_type", [put(J, "# TYPE foo gauge\n# HELP foo after\nfoo 1\n")]),
    C("long_label_value", [put(J, 'foo{a="' + "x" * 5000 + '"} 1\n')]),
    C("many_labels_sorted_in_output", [put(J + "/zz/1", 'foo{z="1",y="2",b="3",a="4"} 1\n')]),
    C("label_le_and_quantile_in_untyped", [put(J, 'foo{le="1",quantile="2"} 1\n')]),
    # ---------------------------------------------------------------- ordering across groups
    C("ordering_across_groups", [
        put("/metrics/job/b", 'zeta 1\nalpha{x="2"} 1\nalpha{x="1"} 2\nmid 3\n'),
        put("/metrics/job/a", 'alpha{x="3"} 3\nzeta 2\n'),
        put("/metrics/job/c/instance/z", "mid 4\n"),
        put("/metrics/job/c/instance/a", "mid 5\n"),
        put("/metrics/job/a/instance/b", "beta 6\n"),
    ]),
    C("ordering_numeric_label_values", [put(J, 'foo{x="10"} 1\nfoo{x="9"} 2\nfoo{x="1"} 3\nfoo{x="a"} 4\nfoo{x="B"} 5\n')]),
    C("ordering_label_sets_of_different_size", [put(J, 'foo{a="1"} 1\nfoo{a="1",b="1"} 2\nfoo{b="0"} 3\nfoo 4\n')]),
    C("help_consistent_between_groups", [put("/metrics/job/a", "# HELP foo same\nfoo 1\n"), put("/metrics/job/b", "# HELP foo same\nfoo 2\n")]),
    # Upstream keeps one of the two HELP strings, picked by Go map iteration order: HELP is ignored here.
    C("help_differs_between_groups", [put("/metrics/job/a", "# HELP foo one\nfoo 1\n"), put("/metrics/job/b", "# HELP foo two\nfoo 2\n")], drop_help=True),
    C("help_missing_in_one_group", [put("/metrics/job/a", "# HELP foo one\nfoo 1\n"), put("/metrics/job/b", "foo 2\n")], drop_help=True),
    C("ordering_label_values_positionally", [put(J, 'foo{a="2"} 1\nfoo{b="1"} 2\nfoo{a="1",c="9"} 3\nfoo{b="0",c="1"} 4\n')]),
    # Two metrics whose label values are equal position by position ({a="1"} vs {b="1"}) tie in upstream's
    # sort and come out in arbitrary order: the comparison puts such ties in label order (expo.canonical_ties).
    C("ordering_ties_are_arbitrary", [put(J, 'foo{b="1"} 1\nfoo{a="1"} 2\nfoo{c="1"} 3\n')]),
    C("ordering_family_names_bytewise", [put(J, "b 1\nB 1\n_c 1\n:d 1\na:b 1\nab 1\na_b 1\n")]),
    C("ordering_same_family_many_groups", [put(f"/metrics/job/j/instance/{i}", f"foo {i}\n") for i in (3, 1, 2, 10)]),
    # ---------------------------------------------------------------- the same group addressed differently
    C("base64_job_same_group_as_plain", [put(J, "a 1\n"), put("/metrics/job@base64/" + b64("j"), "b 1\n")]),
    C("base64_label_same_group_as_plain", [put(J + "/x/y", "a 1\n"), put(J + "/x@base64/" + b64("y"), "b 1\n")]),
    C("percent_encoded_same_group_as_plain", [put(J + "/x/y", "a 1\n"), put("/metrics/job/%6A/x/%79", "b 1\n")]),
    C("delete_via_base64_path", [put(J + "/x/a%2Fb/c", "a 1\n"), put(J + "/p/a", "a 2\n"), delete("/metrics/job@base64/" + b64("j") + "/p@base64/" + b64("a"))]),
    C("delete_with_empty_instance_is_other_group", [put(J, "a 1\n"), delete(J + "/instance@base64/=")]),
    # ---------------------------------------------------------------- consistency across pushes over time
    C("type_conflict_released_after_replace", [put("/metrics/job/a", "# TYPE foo counter\nfoo 1\n"), put("/metrics/job/b", "# TYPE foo gauge\nfoo 1\n", 400), put("/metrics/job/a", "bar 1\n"), put("/metrics/job/b", "# TYPE foo gauge\nfoo 1\n")]),
    C("type_conflict_released_after_delete", [put("/metrics/job/a", "# TYPE foo counter\nfoo 1\n"), delete("/metrics/job/a"), put("/metrics/job/b", "# TYPE foo gauge\nfoo 1\n")]),
    C("duplicate_released_after_post", [put(J, 'foo{x="1"} 1\n'), put(J + "/x/1", "foo 2\n", 400), post(J, "bar 1\n"), post(J, 'foo{x="2"} 1\n'), put(J + "/x/1", "foo 2\n")]),
    C("help_conflict_same_group_post", [put(J, "# HELP foo one\nfoo 1\n"), post(J, "# HELP foo two\nfoo 2\n")]),
    # ---------------------------------------------------------------- UTF-8 validity, reserved names
    C("invalid_utf8_label_value_in_body", [put(J, b'foo{a="\xff"} 1\n', 400)]),
    # Invalid UTF-8 in a grouping label value: see BREAKS_UPSTREAM_SCRAPE (upstream's /metrics breaks).
    C("invalid_utf8_in_help", [put(J, b"# HELP foo \xff\nfoo 1\n")]),
    C("name_label_in_body_400", [put(J, 'foo{__name__="bar"} 1\n', 400)]),
    C("raw_tab_in_label_value", [put(J, 'foo{a="x\ty"} 1\n')]),
    C("gzip_empty_body_400", [put(J, b"", 400, headers={"Content-Encoding": "gzip"})]),
    # ---------------------------------------------------------------- protobuf (the Go client's format)
    C("pb_gauge_and_counter", [put(J, pb.delimited(
        pb.family("g", "gauge", [pb.metric([("a", "1")], gauge=1.5)], help="A gauge."),
        pb.family("c", "counter", [pb.metric(counter=7)])), headers=PBH)]),
    C("pb_summary_histogram", [put(J, pb.delimited(
        pb.family("s", "summary", [pb.metric(summary=(3, 4.5, [(0.5, 1), (0.99, 2)]))]),
        pb.family("h", "histogram", [pb.metric(histogram=(3, 4.5, [(1, 1), (2, 2)]))])), headers=PBH)]),
    C("pb_untyped_with_labels", [put(J + "/a/1", pb.delimited(
        pb.family("u", "untyped", [pb.metric([("a", "2"), ("b", "x")], untyped=3)])), headers=PBH)]),
    C("pb_timestamp_400", [put(J, pb.delimited(pb.family("g", "gauge", [pb.metric(gauge=1, timestamp_ms=1000)])), 400, headers=PBH)]),
    C("pb_type_mismatch_400", [put(J, pb.delimited(pb.family("g", "gauge", [pb.metric(counter=1)])), 400, headers=PBH)]),
    # pb_invalid_metric_name / pb_invalid_label_name: v1.5.1 writes "a-b" raw (an invalid exposition) and
    # rejects the label; v1.11 validates names as UTF-8 and escapes them on output: see test_v111_pb_*.
    C("pb_duplicate_series_400", [put(J, pb.delimited(pb.family("g", "gauge", [pb.metric(gauge=1), pb.metric(gauge=2)])), 400, headers=PBH)]),
    C("pb_family_without_metrics", [put(J, pb.delimited(pb.family("g", "gauge", [])), headers=PBH)]),
    C("pb_empty_body", [put(J, "foo 1\n"), put(J, b"", headers=PBH)]),
    C("pb_truncated_400", [put(J, pb.delimited(pb.family("g", "gauge", [pb.metric(gauge=1)]))[:-3], 400, headers=PBH)]),
    C("pb_same_family_twice_last_wins", [put(J, pb.delimited(
        pb.family("g", "gauge", [pb.metric(gauge=1)]), pb.family("g", "gauge", [pb.metric(gauge=2)])), headers=PBH)]),
    C("pb_without_delimited_param_is_text_400", [put(J, pb.delimited(pb.family("g", "gauge", [pb.metric(gauge=1)])), 400,
        headers={"Content-Type": "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily"})]),
    C("pb_then_text_post", [put(J, pb.delimited(pb.family("g", "gauge", [pb.metric(gauge=1)])), headers=PBH), post(J, "h 2\n")]),
    # ---------------------------------------------------------------- content encoding and type
    C("gzip_body", [put(J, gzip.compress(b"foo 1\nbar 2\n"), headers={"Content-Encoding": "gzip"})]),
    C("gzip_invalid_400", [put(J, b"not gzip at all", 400, headers={"Content-Encoding": "gzip"})]),
    C("gzip_truncated_400", [put(J, gzip.compress(b"foo 1\nbar 2\n")[:-10], 400, headers={"Content-Encoding": "gzip"})]),
    C("unknown_content_encoding_is_ignored", [put(J, "foo 1\n", headers={"Content-Encoding": "identity"})]),
    C("text_with_json_content_type", [put(J, "foo 1\n", headers={"Content-Type": "application/json"})]),
    C("text_with_text_content_type", [put(J, "foo 1\n", headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})]),
    # ---------------------------------------------------------------- other endpoints (status codes; the store must stay as it is)
    C("health_endpoints", [req("GET", "/-/healthy", 200), req("GET", "/-/ready", 200), req("PUT", "/-/healthy", 405), req("POST", "/-/ready", 405)]),
    C("api_v1_endpoints", [put(J, "foo 1\n"), req("GET", "/api/v1/status", 200), req("GET", "/api/v1/metrics", 200), req("POST", "/api/v1/metrics", 405)]),
    C("admin_wipe_disabled_404", [put(J, "foo 1\n"), req("PUT", "/api/v1/admin/wipe", 404)]),
    C("admin_wipe_wrong_method_405", [put(J, "foo 1\n"), req("GET", "/api/v1/admin/wipe", 405), req("POST", "/api/v1/admin/wipe", 405), req("DELETE", "/api/v1/admin/wipe", 405)], flags=("--web.enable-admin-api",)),
    C("admin_wipe", [put("/metrics/job/a", "foo 1\n"), put("/metrics/job/b", "bar 1\n"), req("PUT", "/api/v1/admin/wipe", 202), put("/metrics/job/c", "baz 1\n")], flags=("--web.enable-admin-api",)),
    C("lifecycle_disabled_403", [req("PUT", "/-/quit", 403), req("POST", "/-/quit", 403), req("GET", "/-/quit", 405)]),
    C("metrics_trailing_slash_redirect", [req("GET", "/metrics/", 301), req("PUT", "/metrics/", 404)]),
    # ---------------------------------------------------------------- route prefix and telemetry path
    C("route_prefix", [put("/pg/metrics/job/j", "foo 1\n"), post("/pg/metrics/job@base64/" + b64("a/b"), "bar 1\n"),
                       put("/metrics/job/j", "foo 1\n", 404), delete("/pg/metrics/job/j"), req("GET", "/pg/-/healthy", 200),
                       req("GET", "/pg/api/v1/status", 200), req("GET", "/metrics", 404)], flags=("--web.route-prefix=/pg",)),
    C("route_prefix_trailing_slash", [put("/pg/metrics/job/j", "foo 1\n")], flags=("--web.route-prefix=/pg/",)),
    C("external_url_sets_prefix", [put("/gw/metrics/job/j", "foo 1\n"), req("GET", "/gw/-/ready", 200)], flags=("--web.external-url=http://example.test:9091/gw/",)),
    C("external_url_with_explicit_prefix", [put("/x/metrics/job/j", "foo 1\n"), put("/gw/metrics/job/j", "foo 1\n", 404)],
      flags=("--web.external-url=http://example.test/gw", "--web.route-prefix=/x")),
    C("telemetry_path", [put("/metrics/job/j", "foo 1\n"), req("GET", "/metrics", 404), req("GET", "/scrape", 200)], flags=("--web.telemetry-path=/scrape",)),
    # ---------------------------------------------------------------- consistency check disabled
    C("unchecked_push_is_202", [put(J, "foo 1\n", 202), post(J, "bar 1\n", 202), delete(J)], flags=("--push.disable-consistency-check",)),
    C("unchecked_timestamp_rejected", [put(J, "foo 1\n", 202), put(J, "foo 1 5\n", 202)], flags=("--push.disable-consistency-check",)),
    C("unchecked_parse_error_400", [put(J, "foo{\n", 400)], flags=("--push.disable-consistency-check",)),
    C("unchecked_put_replaces_post_merges", [put(J, "a 1\nb 2\n", 202), post(J, "a 3\n", 202), put(J + "/x/1", "c 1\n", 202), put(J, "d 4\n", 202)], flags=("--push.disable-consistency-check",)),
    C("unchecked_bad_path_400", [put(J + "/a", "foo 1\n", 400), put("/metrics/job@base64/=", "foo 1\n", 400)], flags=("--push.disable-consistency-check",)),
    C("unchecked_empty_put_and_base64", [put("/metrics/job@base64/" + b64("a/b") + "/c@base64/=", "foo 1\n", 202), put("/metrics/job@base64/" + b64("a/b") + "/c@base64/=", "", 202)], flags=("--push.disable-consistency-check",)),
]

_names = [c.name for c in CASES]
assert len(_names) == len(set(_names)), "duplicate case names"



# Differences of ours that the team has decided to accept for now: case name -> reason. Such a case is
# run as xfail(strict=True): it is reported, and it fails again as soon as ours behaves like upstream
# (then remove it from here). Empty unless someone decides otherwise; never add a case just to get green.
KNOWN_DIFFERENCES = {
    # Deliberate, listed in the README: Go's router answers a path with empty segments or "." with a
    # redirect to the cleaned path, which a client pushing with PUT/POST does not follow; ours answers
    # 400 with the reason (empty job or label name), and takes "." as a value.
    "empty_label_name_redirect": "ours: 400 improper label name instead of a redirect",
    "empty_job_redirect": "ours: 400 job name is required instead of a redirect",
    "double_slash_in_path": "ours: 400 job name is required instead of a redirect",
    "dot_segment_in_path": "ours: '.' is a label value, no redirect",
    "empty_segment_in_labels_redirect": "ours: 400 empty segment (README) instead of a redirect",
    # Deliberate: pushing any of the gateway's own metric names is refused, whatever type and help.
    "own_counter_name_with_own_help": "ours: 400, the gateway's own names cannot be pushed",
}
assert set(KNOWN_DIFFERENCES) <= set(_names), set(KNOWN_DIFFERENCES) - set(_names)


def _params():
    for case in CASES:
        marks = []
        if case.name in KNOWN_DIFFERENCES and not OURS_IS_REFERENCE:
            marks.append(pytest.mark.xfail(reason=KNOWN_DIFFERENCES[case.name], strict=True))
        yield pytest.param(case, id=case.name, marks=marks)


@pytest.mark.parametrize("case", list(_params()))
def test_differential(case, start_gateway):
    run_case(case, start_gateway)

def test_metrics_content_type(reference, ours):
    for gw in (reference, ours):
        assert gw.request("PUT", J, body=b"foo 1\n").status == 200
    r, o = reference.metrics(), ours.metrics()
    assert o.status == r.status == 200
    rt, ot = r.headers.get("content-type", ""), o.headers.get("content-type", "")
    assert rt.startswith("text/plain") and "version=0.0.4" in rt, rt
    assert ot.startswith("text/plain") and "version=0.0.4" in ot, ot


PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


@pytest.mark.parametrize("accept", [PROMETHEUS_ACCEPT, "text/plain", "*/*", "application/json"],
                         ids=["prometheus", "text_plain", "any", "json"])
def test_scrape_with_accept_header(reference, ours, accept):
    """Upstream never negotiates OpenMetrics: a Prometheus server's Accept header gets text 0.0.4,
    and so does ours unless --web.enable-openmetrics; every Accept header gets the same content."""
    for gw in (reference, ours):
        assert gw.request("PUT", J, body=SUMMARY.encode()).status == 200
    r, o = reference.metrics({"Accept": accept}), ours.metrics({"Accept": accept})
    assert r.status == o.status == 200
    for who, resp in (("reference", r), ("ours", o)):
        ct = resp.headers.get("content-type", "")
        assert ct.startswith("text/plain") and "version=0.0.4" in ct, f"{who} answered Content-Type {ct}"
    a = expo.canonical_ties(expo.normalise(expo.parse(r.text)))
    b = expo.canonical_ties(expo.normalise(expo.parse(o.text)))
    assert a == b, _diff(a, b)


@ours_only
def test_openmetrics_when_enabled(start_gateway):
    """--web.enable-openmetrics: a Prometheus server's Accept header gets OpenMetrics 1.0.0."""
    ours = start_gateway("ours", "--web.enable-openmetrics")
    assert ours.request("PUT", J, body=SUMMARY.encode()).status == 200
    o = ours.metrics({"Accept": PROMETHEUS_ACCEPT})
    assert o.status == 200, o
    ot = o.headers.get("content-type", "")
    assert ot.startswith("application/openmetrics-text") and "version=1.0.0" in ot, ot
    assert o.text.endswith("# EOF\n"), o.text[-200:]
    assert '# TYPE s summary\ns{instance="",job="j",quantile="0.5"} 1.0\n' in o.text, o.text


PROTOBUF_TEXT_ACCEPT = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding="


@ours_only
@pytest.mark.parametrize("encoding", ["text", "compact-text"])
def test_protobuf_text_encodings_are_refused(ours, encoding):
    """DELIBERATE: upstream answers protobuf's text encodings (a debugging aid whose output Go
    randomises on purpose); ours answers 406 with the reason rather than another format."""
    r = ours.metrics({"Accept": PROTOBUF_TEXT_ACCEPT + encoding + ",text/plain;q=0.5"})
    assert r.status == 406, r
    assert f"protobuf {encoding} encoding is not served" in r.text, r.text
    # Asked for after an acceptable format, that format is served.
    r = ours.metrics({"Accept": "text/plain;version=0.0.4," + PROTOBUF_TEXT_ACCEPT + encoding + ";q=0.5"})
    assert r.status == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4"), r


@pytest.mark.parametrize("path", ["/metrics/job/j", "/metrics/job/j/a/b", "/metrics", "/-/quit", "/-/healthy", "/"])
def test_options_allow(reference, ours, path):
    """OPTIONS (a CORS preflight) on a routed path: 200 and the same Allow header as upstream."""
    r, o = reference.request("OPTIONS", path), ours.request("OPTIONS", path)
    assert r.status == o.status == 200, (r, o)
    assert o.headers.get("allow") == r.headers.get("allow"), (r.headers, o.headers)


def test_scrape_protobuf_accept(reference, ours):
    """A scraper asking for delimited protobuf gets it (content type only: bytes are not compared)."""
    accept = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
    for gw in (reference, ours):
        assert gw.request("PUT", J, body=b"foo 1\n").status == 200
    for gw in (reference, ours):
        resp = gw.metrics({"Accept": accept})
        assert resp.status == 200
        ct = resp.headers.get("content-type", "")
        assert ct.startswith("application/vnd.google.protobuf") and "encoding=delimited" in ct, (gw, ct)
        assert b"foo" in resp.body


PB_SCRAPE_PUSHES = [
    ("/metrics/job/a", "# HELP c A counter.\n# TYPE c counter\nc{x=\"1\"} 3\nc{x=\"2\"} 4\n" + SUMMARY),
    ("/metrics/job/b/instance/i", HISTOGRAM + '# TYPE g gauge\ng{v="nan"} NaN\ng{v="inf"} +Inf\ng{v="esc \\" \\\\"} -1e-07\n'),
    ("/metrics/job/c", '# TYPE h2 histogram\nh2_bucket{le="1"} 1\nh2_bucket{le="2"} 2\nh2_sum 3\nh2_count 4\nu 1\nu2{a=""} 5\n'),
    ("/metrics/job/d", pb.delimited(
        pb.family("pg", "gauge", [pb.metric([("a", "1")], gauge=1.5)], help="A pb gauge."),
        pb.family("ps", "summary", [pb.metric(summary=(3, 4.5, [(0.5, 1), (0.99, 2)]))]),
        pb.family("ph", "histogram", [pb.metric(histogram=(3, 4.5, [(1, 1), (2, 2)]))]))),
]


def _pb_normalise(fams):
    out = []
    for f in fams:
        metrics = f["metrics"]
        if f["name"].startswith(expo.OWN_PREFIXES):
            metrics = [m for m in metrics if "job" in m["labels"]]
            if not metrics:
                continue
        norm = []
        for m in metrics:
            m = dict(m, labels=sorted(m["labels"].items()))
            if f["name"] in expo.TIMESTAMP_FAMILIES:
                m["gauge"] = "zero" if m.get("gauge") == 0 else "non-zero"
            norm.append(repr(sorted(m.items())))
        out.append((f["name"], f["type"], f["help"], sorted(norm)))
    return out


def test_scrape_protobuf_content(reference, ours):
    """A protobuf scrape (what Prometheus asks for with native histograms on) carries the same families,
    types, HELP and metrics as upstream's, in the same family order. Fields a newer format adds (created
    timestamps, exemplars, native histogram fields) are not compared."""
    accept = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
    for path, body in PB_SCRAPE_PUSHES:
        headers = {"Content-Type": pb.CONTENT_TYPE} if isinstance(body, bytes) else {}
        body = body if isinstance(body, bytes) else body.encode()
        for gw in (reference, ours):
            assert gw.request("PUT", path, headers, body).status == 200, (gw, path)
    r, o = reference.metrics({"Accept": accept}), ours.metrics({"Accept": accept})
    assert r.status == o.status == 200
    a, b = _pb_normalise(pb.decode_delimited(r.body)), _pb_normalise(pb.decode_delimited(o.body))
    assert len(a) == 12, [f[0] for f in a]  # c g h h2 pg ph ps push_failure_time_seconds push_time_seconds s u u2
    assert sorted(a) == sorted(b), "\n".join(difflib.unified_diff(
        [repr(x) for x in sorted(a)], [repr(x) for x in sorted(b)], "reference", "ours", lineterm=""))
    assert [f[0] for f in a] == [f[0] for f in b], "family order differs"


_RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def _nanos(rfc3339):
    whole, _, fraction = rfc3339.rstrip("Z").partition(".")
    seconds = int(datetime.datetime.fromisoformat(whole).replace(tzinfo=datetime.timezone.utc).timestamp())
    return seconds * 10**9 + int((fraction + "000000000")[:9])


def _api_normalise(doc):
    """/api/v1/metrics with the groups (upstream: map order) sorted and timestamps made comparable:
    each family's time_stamp becomes its rank among the distinct time_stamps of its group, so that
    which families were set by the same change, and in which order, is compared."""
    assert doc.get("status") == "success", doc
    groups = []
    for g in doc["data"]:
        g = json.loads(json.dumps(g))
        families = {name: fam for name, fam in g.items() if isinstance(fam, dict) and "metrics" in fam}
        for name, fam in families.items():
            assert _RFC3339.match(fam.get("time_stamp", "")), f"time_stamp {fam.get('time_stamp')!r} of {name}"
        ranks = sorted({_nanos(fam["time_stamp"]) for fam in families.values()})
        for name, fam in families.items():
            fam["time_stamp"] = f"<change {ranks.index(_nanos(fam['time_stamp']))}>"
            if name in expo.TIMESTAMP_FAMILIES:
                for m in fam["metrics"]:
                    m["value"] = "zero" if float(m["value"]) == 0 else "non-zero"
        groups.append(g)
    return sorted(groups, key=lambda g: json.dumps(g["labels"], sort_keys=True))


def test_api_v1_metrics(reference, ours):
    """The JSON API's view of the groups (what the web UI and scripts read) matches upstream's."""
    pushes = [
        ("PUT", "/metrics/job/a/instance/i", '# HELP c A counter.\n# TYPE c counter\nc{x="1"} 3\n' + SUMMARY + HISTOGRAM + "u NaN\nv +Inf\nw 1e+06\n"),
        ("PUT", "/metrics/job@base64/" + b64("x/y") + "/p@base64/=", "g 1.5e-07\n"),
        ("PUT", "/metrics/job/b", "ok 1\n"),
        ("PUT", "/metrics/job/b", "bad 1 5\n"),  # rejected: last_push_successful false
        ("PUT", "/metrics/job/c", "bad 1 5\n"),  # rejected: a group with only the timestamps
        ("POST", "/metrics/job/a/instance/i", "# HELP d Post.\n# TYPE d gauge\nd -0.5\n"),
        ("PUT", "/metrics/job/zero", "# TYPE nz gauge\nnz -0\n"),  # the API keeps the sign of -0
    ]
    for method, path, body in pushes:
        assert reference.request(method, path, body=body.encode()).status == ours.request(method, path, body=body.encode()).status
    r, o = reference.request("GET", "/api/v1/metrics"), ours.request("GET", "/api/v1/metrics")
    assert r.status == o.status == 200
    assert o.headers.get("content-type", "").startswith("application/json"), o.headers
    a, b = _api_normalise(json.loads(r.body)), _api_normalise(json.loads(o.body))
    assert a == b, "\n".join(difflib.unified_diff(json.dumps(a, indent=1, sort_keys=True).splitlines(),
                                                  json.dumps(b, indent=1, sort_keys=True).splitlines(), "reference", "ours", lineterm=""))


def test_large_push_order_and_values(reference, ours):
    """A bigger push across several groups: exact equality of the normalised expositions."""
    body = "".join(f'# TYPE m{i} gauge\n' + "".join(f'm{i}{{k="{j}"}} {i * 1000 + j * 0.5}\n' for j in range(20))
                   for i in range(30))
    for g in range(5):
        path = f"/metrics/job/big/instance/{g}"
        assert reference.request("PUT", path, body=body.encode()).status == ours.request("PUT", path, body=body.encode()).status == 200
    case = Case("large_push", [])
    _compare(reference, ours, case, "after the pushes", False)


# ---------------------------------------------------------------- ours only: upstream bugs and deliberate differences


def _scrape_ok(gw):
    r = gw.metrics()
    assert r.status == 200, f"/metrics answered {r.status}: {r.text[:300]}"
    return expo.parse(r.text)


# Upstream bug: a push rejected by the consistency check still goes through the failure bookkeeping,
# which creates the target group (push_time_seconds 0 and push_failure_time_seconds) in the real store
# without any check. When that group's own timestamp series are invalid or collide with another
# group's, upstream's /metrics answers 500 from then on. Each entry: (name, requests before, the
# rejected request).
BREAKS_UPSTREAM_SCRAPE = [
    # {job="j",instance=""} and {job="j"} are two groups whose push_time_seconds are the same series.
    ("empty_instance_after_plain", [put(J, "foo 1\n")], put(J + "/instance@base64/=", "bar 1\n", 400)),
    ("plain_after_empty_instance", [put(J + "/instance/", "foo 1\n")], put(J, "bar 1\n", 400)),
    # A grouping label value that is not UTF-8 (percent-encoded or base64 in the path).
    ("invalid_utf8_path_value", [], put(J + "/a/%FF", "foo 1\n", 400)),
    ("invalid_utf8_base64_value", [put(J, "foo 1\n")], put(J + "/a@base64/_w", "foo 1\n", 400)),
]


@ours_only
@pytest.mark.parametrize("name,before,bad", BREAKS_UPSTREAM_SCRAPE, ids=[c[0] for c in BREAKS_UPSTREAM_SCRAPE])
def test_rejected_push_never_breaks_scrape(name, before, bad, ours):
    """DELIBERATE (upstream bug, see BREAKS_UPSTREAM_SCRAPE): ours rejects the push with 400 like upstream,
    but /metrics keeps answering 200 with a valid exposition without duplicate series, and the earlier
    pushes are still exposed."""
    for step in before:
        assert ours.request(step.method, step.path, step.headers, step.body).status == step.expect
    expected = expo.normalise(_scrape_ok(ours))
    r = ours.request(bad.method, bad.path, bad.headers, bad.body)
    assert r.status == 400, r
    fams = _scrape_ok(ours)
    seen = set()
    for f in fams:
        for smp in f.samples:
            key = (smp.name, frozenset(smp.labels))
            assert key not in seen, f"duplicate series {key}"
            seen.add(key)
    after = [f for f in expo.normalise(fams) if f[0] not in expo.TIMESTAMP_FAMILIES]
    assert after == [f for f in expected if f[0] not in expo.TIMESTAMP_FAMILIES]
    assert ours.request("PUT", "/metrics/job/later", body=b"later 1\n").status == 200
    _scrape_ok(ours)


@pytest.mark.parametrize("name,before,bad", BREAKS_UPSTREAM_SCRAPE, ids=[c[0] for c in BREAKS_UPSTREAM_SCRAPE])
def test_reference_bug_rejected_push_breaks_scrape(name, before, bad, reference):
    """Documents the upstream bug behind test_rejected_push_never_breaks_scrape: if this starts failing,
    the reference changed."""
    for step in before + [bad]:
        assert reference.request(step.method, step.path, step.headers, step.body).status == step.expect
    assert reference.metrics().status == 500


@ours_only
def test_histogram_le_grouping_label(ours):
    """DELIBERATE (upstream bug): upstream accepts a histogram pushed with a grouping label `le` and
    exposes every bucket with two `le` labels (h_bucket{...,le="5",le="1"}), an exposition that
    promtool and Prometheus reject. Ours rejects the push with 400, as upstream does for the
    corresponding case of a summary and a `quantile` grouping label."""
    assert ours.request("PUT", J + "/le/5", body=HISTOGRAM.encode()).status == 400
    # Only the failure bookkeeping of the target group (as upstream does after any rejected push).
    assert [f[0] for f in expo.normalise(_scrape_ok(ours))] == ["push_failure_time_seconds", "push_time_seconds"]


def test_reference_bug_histogram_le_grouping_label(reference):
    """Documents the upstream behaviour behind test_histogram_le_grouping_label."""
    assert reference.request("PUT", J + "/le/5", body=HISTOGRAM.encode()).status == 200
    assert 'h_bucket{instance="",job="j",le="5",le="1"} 1' in reference.metrics().text


# Repeated quantiles and bucket bounds, written alike and differently ("0.5"/"0.50", "1"/"1.0"), in
# one summary and one histogram, and a summary whose series come back after another one.
REPEATED_BOUNDS = (
    '# TYPE s summary\ns{quantile="0.5"} 1\ns{quantile="0.50"} 2\ns{quantile="0.9"} 5\ns_sum 3\ns_count 2\n'
    '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="1.0"} 2\nh_bucket{le="+Inf"} 3\n'
    'h_bucket{le="+Inf"} 4\nh_sum 3\nh_count 3\n'
    '# TYPE t summary\nt{a="1",quantile="0.5"} 1\nt{a="2",quantile="0.9"} 2\nt{a="1",quantile="0.5"} 3\n'
)


def _first_of_each_series(families):
    """What Prometheus keeps of an exposition with repeated series: the first sample of each."""
    kept = []
    for name, typ, help_, samples in families:
        seen = set()
        firsts = []
        for sample in samples:
            key = (sample[0], tuple(sample[1]))
            if key not in seen:
                seen.add(key)
                firsts.append(sample)
        kept.append((name, typ, help_, firsts))
    return kept


@ours_only
def test_repeated_quantiles_and_buckets_are_exposed_once(reference, ours):
    """DELIBERATE (upstream bug): upstream accepts a summary with a repeated quantile or a histogram
    with a repeated bucket bound and exposes each repeat as another series with the same labels;
    Prometheus keeps the first of them. Ours accepts the push too (200) and keeps only the first:
    its exposition is upstream's with the repeats left out."""
    for gw in (reference, ours):
        assert gw.request("PUT", J, body=REPEATED_BOUNDS.encode()).status == 200
    ours_families = _scrape_ok(ours)
    seen = set()
    for f in ours_families:
        for smp in f.samples:
            key = (smp.name, frozenset(smp.labels))
            assert key not in seen, f"duplicate series {key}"
            seen.add(key)
    expected = _first_of_each_series(expo.normalise(_scrape_ok(reference)))
    assert expo.normalise(ours_families) == expected


def test_reference_bug_repeated_quantiles_and_buckets(reference):
    """Documents the upstream behaviour behind the previous test."""
    assert reference.request("PUT", J, body=REPEATED_BOUNDS.encode()).status == 200
    text = reference.metrics().text
    for line in ('s{instance="",job="j",quantile="0.5"} 1', 's{instance="",job="j",quantile="0.5"} 2',
                 'h_bucket{instance="",job="j",le="1"} 1', 'h_bucket{instance="",job="j",le="1"} 2'):
        assert line in text, text


@ours_only
def test_pushed_push_failure_time_seconds_never_replaces_the_gateways(ours):
    """DELIBERATE (upstream bug): a pushed family named push_failure_time_seconds is dropped in favour
    of the gateway's own gauge on the first push to a group, but on a later push upstream stores the
    pushed family instead (untyped, no HELP, the pushed value 7) in place of its failure timestamp.
    Ours always keeps its own gauge (HELP, type gauge, 0 = no failure yet)."""
    assert ours.request("PUT", J, body=b"push_failure_time_seconds 5\n").status == 200
    assert ours.request("PUT", J, body=b"push_failure_time_seconds 7\n").status == 200
    fams = {f.name: f for f in _scrape_ok(ours)}
    f = fams["push_failure_time_seconds"]
    assert f.type == "gauge" and f.help == "Last Unix time when changing this group in the Pushgateway failed."
    assert [s.value for s in f.samples] == ["0"]


def test_reference_bug_pushed_push_failure_time_seconds(reference):
    """Documents the upstream behaviour behind the previous test."""
    assert reference.request("PUT", J, body=b"push_failure_time_seconds 5\n").status == 200
    assert reference.request("PUT", J, body=b"push_failure_time_seconds 7\n").status == 200
    assert 'push_failure_time_seconds{instance="",job="j"} 7' in reference.metrics().text


@ours_only
def test_unchecked_inconsistent_pushes_never_fail_the_scrape(start_gateway):
    """DELIBERATE: with --push.disable-consistency-check upstream accepts inconsistent pushes and then its
    whole /metrics answers 500. Ours keeps answering 200 (it may drop the offending series)."""
    ours = start_gateway("ours", "--push.disable-consistency-check")
    assert ours.request("PUT", "/metrics/job/a", body=b"# TYPE foo counter\nfoo 1\nok 1\n").status == 202
    assert ours.request("PUT", "/metrics/job/b", body=b"# TYPE foo gauge\nfoo 1\n").status == 202
    assert ours.request("PUT", "/metrics/job/c", body=b"dup 1\ndup 2\n").status == 202
    deadline = time.monotonic() + 30
    while True:
        fams = _scrape_ok(ours)
        names = {s.name for f in fams for s in f.samples}
        if "ok" in names or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert "ok" in names, "the consistent series of group a must still be exposed"


def test_reference_unchecked_inconsistent_push_fails_scrape(start_gateway):
    """Documents upstream's behaviour behind the previous test."""
    ref = start_gateway("reference", "--push.disable-consistency-check")
    assert ref.request("PUT", "/metrics/job/a", body=b"# TYPE foo counter\nfoo 1\n").status == 202
    assert ref.request("PUT", "/metrics/job/b", body=b"# TYPE foo gauge\nfoo 1\n").status == 202
    deadline = time.monotonic() + 30
    while ref.metrics().status != 500:
        assert time.monotonic() < deadline, "the reference no longer fails the scrape"
        time.sleep(0.05)


@ours_only
def test_go_metric_names_are_free_in_ours(ours):
    """DELIBERATE: ours exports no go_* metrics, so pushing go_goroutines as a counter is accepted
    (upstream rejects it: it clashes with its own gauge). Not compared with upstream."""
    r = ours.request("PUT", J, body=b"# TYPE go_goroutines counter\ngo_goroutines 1\n")
    assert r.status == 200, r
    fams = _scrape_ok(ours)
    assert any(s.name == "go_goroutines" and dict(s.labels).get("job") == "j" for f in fams for s in f.samples)


@ours_only
def test_content_encoding_is_case_insensitive(ours):
    """v1.11 (not the v1.5.1 reference): Content-Encoding is matched case-insensitively."""
    r = ours.request("PUT", J, {"Content-Encoding": "GZip"}, gzip.compress(b"foo 1\n"))
    assert r.status == 200, r
    assert expo.samples_of(_scrape_ok(ours), "foo") == {frozenset({("instance", ""), ("job", "j")}): "1"}


def _snappy_framed(data):
    import cramjam
    return bytes(cramjam.snappy.compress(data))


@ours_only
def test_snappy_body(ours):
    """v1.11 (not the v1.5.1 reference): Content-Encoding: snappy (framed format) is accepted."""
    r = ours.request("PUT", J, {"Content-Encoding": "snappy"}, _snappy_framed(b"foo 1\nbar 2\n"))
    assert r.status == 200, r
    fams = _scrape_ok(ours)
    assert expo.samples_of(fams, "bar") == {frozenset({("instance", ""), ("job", "j")}): "2"}


@ours_only
def test_snappy_invalid_is_400(ours):
    r = ours.request("PUT", J, {"Content-Encoding": "snappy"}, b"definitely not snappy")
    assert r.status == 400, r


@ours_only
def test_utf8_names_need_the_flag(start_gateway):
    """v1.11: without --push.enable-utf8-names a quoted UTF-8 metric name is rejected."""
    ours = start_gateway("ours")
    assert ours.request("PUT", J, body='{"my.metric"} 1\n'.encode()).status == 400


@ours_only
def test_utf8_names_with_the_flag(start_gateway):
    """v1.11: with --push.enable-utf8-names, UTF-8 metric and label names are accepted, in the body and
    (U__ value-encoding escaping) in the path."""
    ours = start_gateway("ours", "--push.enable-utf8-names")
    r = ours.request("PUT", J + "/U__my_2e_label/v", body='{"my.metric", "other.label"="x"} 1\n'.encode())
    assert r.status == 200, r
    scrape = ours.metrics({"Accept": "text/plain; version=1.0.0; escaping=allow-utf-8"})
    assert scrape.status == 200
    assert '"my.metric"' in scrape.text and '"my.label"="v"' in scrape.text, scrape.text


# ---------------------------------------------------------------- ours only: v1.11 behaviour the v1.5.1 reference lacks
# Found by reading upstream v1.11's dependencies (prometheus/common v0.69 text parser, client_golang
# v1.23 registry): where they differ from the reference, ours is held to v1.11.


@ours_only
def test_v111_quote_escape_in_help(ours):
    """V1.11: the text parser accepts \\" in HELP (v1.5.1 answers 400 "invalid escape sequence")."""
    assert ours.request("PUT", J, body=b'# HELP foo say \\"hi\\"\nfoo 1\n').status == 200
    fams = {f.name: f for f in _scrape_ok(ours)}
    assert fams["foo"].help == 'say "hi"'


@ours_only
def test_v111_quoted_legacy_metric_name_without_flag(ours):
    """V1.11: the quoted-name syntax is parsed even without --push.enable-utf8-names; a name that is
    legacy-valid is then accepted (v1.5.1: 400)."""
    assert ours.request("PUT", J, body=b'{"foo", a="1"} 1\n').status == 200
    assert expo.samples_of(_scrape_ok(ours), "foo") == {frozenset({("a", "1"), ("instance", ""), ("job", "j")}): "1"}


@ours_only
def test_v111_histogram_float_counts(ours):
    """V1.11: non-integer histogram counts are kept as floats (v1.5.1 truncates them)."""
    body = b'# TYPE h histogram\nh_bucket{le="1"} 1.5\nh_bucket{le="+Inf"} 2.5\nh_sum 1\nh_count 2.5\n'
    assert ours.request("PUT", J, body=body).status == 200
    fams = _scrape_ok(ours)
    assert set(expo.samples_of(fams, "h_bucket").values()) == {"1.5", "2.5"}
    assert list(expo.samples_of(fams, "h_count").values()) == ["2.5"]


@ours_only
@pytest.mark.parametrize("body", [
    b'# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_count -1\n',
    b'# TYPE h histogram\nh_bucket{le="1"} -1.5\nh_bucket{le="+Inf"} 1\n',
], ids=["negative_count", "negative_bucket"])
def test_v111_negative_histogram_counts_400(ours, body):
    """V1.11: negative non-integer histogram counts are a parse error (v1.5.1 stores garbage)."""
    assert ours.request("PUT", J, body=b"keep 1\n").status == 200
    assert ours.request("PUT", J, body=body).status == 400
    assert expo.samples_of(_scrape_ok(ours), "keep")


@ours_only
def test_v111_pb_legacy_invalid_names_are_escaped(ours):
    """V1.11: names are validated as UTF-8 by the consistency check, so a protobuf push with metric name
    "a-b" or label name "c-d" is accepted (v1.5.1 rejects the label and writes "a-b" raw, an invalid
    exposition); the default scrape escapes them (underscores), so the exposition stays valid."""
    body = pb.delimited(pb.family("a-b", "gauge", [pb.metric([("c-d", "1")], gauge=1)]))
    assert ours.request("PUT", J, {"Content-Type": pb.CONTENT_TYPE}, body).status == 200
    fams = _scrape_ok(ours)  # parses: every name is legacy-valid or quoted
    assert expo.samples_of(fams, "a_b") == {frozenset({("c_d", "1"), ("instance", ""), ("job", "j")}): "1"}
