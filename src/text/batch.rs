use ndarray::Array2;

use super::EncodedPair;

/// A padded batch, ready for the graph's int64 inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub input_ids: Array2<i64>,
    pub attention_mask: Array2<i64>,
    pub token_type_ids: Array2<i64>,
}

/// Pad the pairs to the longest of them (right padding).
pub fn pad_batch(pairs: &[&EncodedPair], pad_id: i64) -> Batch {
    let n = pairs.len();
    let len = pairs.iter().map(|p| p.len()).max().unwrap_or(0).max(1);
    let mut input_ids = Array2::from_elem((n, len), pad_id);
    let mut attention_mask = Array2::zeros((n, len));
    let mut token_type_ids = Array2::zeros((n, len));
    for (row, p) in pairs.iter().enumerate() {
        for (col, (&id, &tt)) in p.ids.iter().zip(&p.type_ids).enumerate() {
            input_ids[[row, col]] = id;
            attention_mask[[row, col]] = 1;
            token_type_ids[[row, col]] = tt;
        }
    }
    Batch {
        input_ids,
        attention_mask,
        token_type_ids,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_to_longest() {
        let a = EncodedPair {
            ids: vec![1, 2, 3],
            type_ids: vec![0, 0, 1],
        };
        let b = EncodedPair {
            ids: vec![4],
            type_ids: vec![0],
        };
        let batch = pad_batch(&[&a, &b], 9);
        assert_eq!(batch.input_ids.shape(), &[2, 3]);
        assert_eq!(batch.input_ids.row(1).to_vec(), vec![4, 9, 9]);
        assert_eq!(batch.attention_mask.row(1).to_vec(), vec![1, 0, 0]);
        assert_eq!(batch.token_type_ids.row(0).to_vec(), vec![0, 0, 1]);
    }
}
