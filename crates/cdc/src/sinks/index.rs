//! The search-index sink: changes → versioned document changes, applied per tenant.

use cloudpf_model::{Change, Op, TenantId};
use cloudpf_search::{DocChange, Versioned};

/// A change as the engine sees it: upsert the new image, or delete.
pub fn versioned<T: Clone>(change: &Change<T>) -> Versioned<T> {
    let doc_change = match (&change.op, &change.new_image) {
        (Op::Remove, _) | (_, None) => DocChange::Delete,
        (_, Some(image)) => DocChange::Upsert(image.clone()),
    };
    Versioned {
        key: change.key.clone(),
        seq: change.seq.clone(),
        change: doc_change,
    }
}

/// Splits changes by tenant, keeping stream order within each tenant.
pub fn by_tenant<T>(changes: &[Change<T>]) -> Vec<(TenantId, Vec<&Change<T>>)> {
    let mut out: Vec<(TenantId, Vec<&Change<T>>)> = Vec::new();
    for c in changes {
        match out.iter_mut().find(|(t, _)| *t == c.tenant) {
            Some((_, list)) => list.push(c),
            None => out.push((c.tenant.clone(), vec![c])),
        }
    }
    out
}
