//! Cursor paging shared by every list: `?limit=` (default 50, at most 250) and `?iterator=`,
//! the id (or name) of the last item seen. The next page is announced in an RFC 8288 `Link`
//! header. Cursors are keys rather than offsets, so concurrent writes never make a page repeat
//! or skip an item.

use actix_web::http::header::LINK;
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// Items per page when `limit` is absent.
pub const DEFAULT_LIMIT: i64 = 50;
/// Most items per page.
pub const MAX_LIMIT: i64 = 250;

/// `limit` and `iterator` of a list request.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 250 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 250)]
    pub limit: Option<String>,
    /// Cursor from the previous page's `Link` header.
    pub iterator: Option<String>,
}

impl PageQuery {
    /// The validated limit.
    pub fn limit(&self) -> Result<i64, ApiError> {
        match &self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(text) => text
                .parse::<i64>()
                .ok()
                .filter(|limit| (1..=MAX_LIMIT).contains(limit))
                .ok_or_else(|| ApiError::invalid("limit", "must be an integer from 1 to 250")),
        }
    }

    /// The iterator as an id.
    pub fn uuid_iterator(&self) -> Result<Option<uuid::Uuid>, ApiError> {
        self.iterator
            .as_deref()
            .map(|text| {
                uuid::Uuid::try_parse(text)
                    .map_err(|_| ApiError::invalid("iterator", "is not a cursor of this list"))
            })
            .transpose()
    }
}

/// Answers a list: the JSON array, plus `Link: <…>; rel="next"` when more items follow.
/// `next_cursor` is the cursor of the last item of this page.
pub fn list_response<T: Serialize>(
    req: &HttpRequest,
    items: &[T],
    has_more: bool,
    next_cursor: Option<String>,
) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    if let (true, Some(cursor)) = (has_more, next_cursor) {
        response.insert_header((LINK, next_link(req, &cursor)));
    }
    response.json(items)
}

fn next_link(req: &HttpRequest, cursor: &str) -> String {
    let mut query: Vec<(String, String)> =
        url::form_urlencoded::parse(req.query_string().as_bytes())
            .into_owned()
            .filter(|(key, _)| key != "iterator")
            .collect();
    query.push(("iterator".into(), cursor.to_owned()));
    let encoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query)
        .finish();
    format!("<{}?{}>; rel=\"next\"", req.path(), encoded)
}
