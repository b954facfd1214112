//! `[[aggregate]]` tables: `match = '{job=~"lambda-.*"}'`, a PromQL selector over grouping
//! keys (the syntax of `/api/v1/groups?match[]=`); pushes to a matching group aggregate.

use serde::Deserialize;
use toml::Spanned;

use crate::selector::Selector;
use crate::web::AggregateRules;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AggregateFormat {
    #[serde(rename = "match")]
    selector: Spanned<String>,
}

/// The rules, or the span and reason of the first selector that does not parse or that
/// would match every group (a typo there would turn every group into an aggregate).
pub(super) fn rules(
    tables: &[AggregateFormat],
) -> Result<AggregateRules, (std::ops::Range<usize>, String)> {
    let mut selectors = Vec::with_capacity(tables.len());
    for table in tables {
        let span = table.selector.span();
        let selector = Selector::parse(table.selector.get_ref())
            .map_err(|e| (span.clone(), format!("invalid selector: {e}")))?;
        if selector.matches_every_group() {
            return Err((
                span,
                "the selector matches every group; name the groups that aggregate".into(),
            ));
        }
        selectors.push(selector);
    }
    Ok(AggregateRules::new(selectors))
}
