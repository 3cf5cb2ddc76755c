//! Keyset paging, the same for every list: a page is read with one row more than asked
//! for, and that extra row says whether another page follows, without a COUNT.

/// The largest page a list use case returns, whatever the caller asks for.
pub const MAX_PAGE_SIZE: u32 = 100;

/// One page of a list, and where the next one starts (`None` on the last page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T, C> {
    pub items: Vec<T>,
    pub next: Option<C>,
}

/// The number of items a page holds for a requested `limit`: 1 to `MAX_PAGE_SIZE`.
#[must_use]
pub fn page_size(limit: u64) -> u64 {
    limit.clamp(1, u64::from(MAX_PAGE_SIZE))
}

impl<T, C> Page<T, C> {
    /// The page of `size` items from `items`, which were read with up to one more;
    /// the cursor of the last item kept is where the next page starts.
    pub(crate) fn of(mut items: Vec<T>, size: u64, cursor: impl Fn(&T) -> C) -> Self {
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        let next = if items.len() > size {
            items.truncate(size);
            items.last().map(cursor)
        } else {
            None
        };
        Self { items, next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_read_with_an_extra_item_ends_with_a_cursor_and_one_without_does_not() {
        let full = Page::of(vec![1, 2, 3], 2, |n| n * 10);
        assert_eq!(full.items, [1, 2]);
        assert_eq!(full.next, Some(20));
        let last = Page::of(vec![1, 2], 2, |n| n * 10);
        assert_eq!(last.items, [1, 2]);
        assert_eq!(last.next, None);
    }

    #[test]
    fn a_page_holds_1_to_100_items_whatever_is_asked() {
        assert_eq!(page_size(0), 1);
        assert_eq!(page_size(20), 20);
        assert_eq!(page_size(1_000), 100);
    }
}
