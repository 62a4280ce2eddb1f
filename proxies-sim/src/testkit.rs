//! Helpers the models' unit tests share: reading actions back.

use crate::model::{Action, CloseHow, Side};

/// Every byte sent toward `to`, concatenated in order.
pub fn sent(actions: &[Action], to: Side) -> Vec<u8> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { to: t, bytes } if *t == to => Some(bytes.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// Every close, in order.
pub fn closes(actions: &[Action]) -> Vec<(Side, CloseHow)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Close { side, how } => Some((*side, *how)),
            _ => None,
        })
        .collect()
}

/// Every transcript note, in order.
pub fn notes(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Note(n) => Some(n.clone()),
            _ => None,
        })
        .collect()
}
