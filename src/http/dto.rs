//! Response and query shapes shared by several resources.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{error::AppError, repo::PageRequest};

pub const DEFAULT_PER_PAGE: u64 = 20;
pub const MAX_PER_PAGE: u64 = 100;

/// One page of a list: `{data, page, per_page, total}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub page: u64,
    pub per_page: u64,
    pub total: u64,
}

impl<T> Page<T> {
    pub fn new(data: Vec<T>, req: PageRequest, total: u64) -> Self {
        Page {
            data,
            page: req.page,
            per_page: req.per_page,
            total,
        }
    }
}

/// Validates `page` (>= 1) and `per_page` (1..=100); defaults 1 and 20.
pub fn page_request(page: Option<u64>, per_page: Option<u64>) -> Result<PageRequest, AppError> {
    let page = page.unwrap_or(1);
    let per_page = per_page.unwrap_or(DEFAULT_PER_PAGE);
    if page == 0 || page > 1_000_000 {
        return Err(AppError::BadRequest(
            "page must be between 1 and 1000000".into(),
        ));
    }
    if per_page == 0 || per_page > MAX_PER_PAGE {
        return Err(AppError::BadRequest(format!(
            "per_page must be between 1 and {MAX_PER_PAGE}"
        )));
    }
    Ok(PageRequest { page, per_page })
}

/// `{"status": "..."}` for simple acknowledgements.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Ack {
    pub status: String,
}

/// Raw image bytes, as the OpenAPI document describes a download.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct ImageBytes(pub Vec<u8>);
