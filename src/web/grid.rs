//! The latent grid: a sweep of two latent dims around a base z, sampled at cell centres.

/// Most cells along one side of a grid.
pub const MAX_GRID_SIDE: usize = 64;

/// A `cols` x `rows` sweep: columns take dim `x_dim` from `x_min` (left) to `x_max` (right), rows
/// take dim `y_dim` from `y_max` (top) to `y_min` (bottom); the other dims keep the base z.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GridSweep {
    /// The dim that changes across.
    pub x_dim: usize,
    /// The dim that changes down.
    pub y_dim: usize,
    /// Left edge of the x range.
    pub x_min: f32,
    /// Right edge of the x range.
    pub x_max: f32,
    /// Bottom edge of the y range.
    pub y_min: f32,
    /// Top edge of the y range.
    pub y_max: f32,
    /// Cells across.
    pub cols: usize,
    /// Cells down.
    pub rows: usize,
}

impl GridSweep {
    /// Checks the sweep for a latent of `latent_dim` dims; the message says what is wrong.
    pub fn check(&self, latent_dim: usize) -> Result<(), String> {
        for (name, dim) in [("x_dim", self.x_dim), ("y_dim", self.y_dim)] {
            if dim >= latent_dim {
                return Err(format!(
                    "{name} = {dim} is out of range: dims are 0..{latent_dim}"
                ));
            }
        }
        if self.x_dim == self.y_dim {
            return Err(format!(
                "x_dim and y_dim are both {}; the grid needs two different dims",
                self.x_dim
            ));
        }
        for (name, min, max) in [("x", self.x_min, self.x_max), ("y", self.y_min, self.y_max)] {
            if !(min.is_finite() && max.is_finite() && min < max) {
                return Err(format!(
                    "{name} range [{min}, {max}] must be finite with min < max"
                ));
            }
        }
        for (name, side) in [("cols", self.cols), ("rows", self.rows)] {
            if side == 0 || side > MAX_GRID_SIDE {
                return Err(format!(
                    "{name} = {side}: the grid takes 1..={MAX_GRID_SIDE} cells per side"
                ));
            }
        }
        Ok(())
    }

    /// Every cell's latent vector, row by row from the top: `[rows * cols, base_z.len()]`.
    pub fn latents(&self, base_z: &[f32]) -> Vec<f32> {
        let mut z = Vec::with_capacity(self.rows * self.cols * base_z.len());
        for row in 0..self.rows {
            let y = cell_value(self.y_max, self.y_min, row, self.rows);
            for col in 0..self.cols {
                let start = z.len();
                z.extend_from_slice(base_z);
                z[start + self.x_dim] = cell_value(self.x_min, self.x_max, col, self.cols);
                z[start + self.y_dim] = y;
            }
        }
        z
    }
}

/// The value at the centre of cell `index` of `count` cells spanning `from`..`to`.
pub fn cell_value(from: f32, to: f32, index: usize, count: usize) -> f32 {
    from + (to - from) * (index as f32 + 0.5) / count.max(1) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep() -> GridSweep {
        GridSweep {
            x_dim: 2,
            y_dim: 0,
            x_min: -1.0,
            x_max: 3.0,
            y_min: 0.0,
            y_max: 2.0,
            cols: 4,
            rows: 2,
        }
    }

    #[test]
    fn cells_sample_centres_left_to_right_and_top_down() {
        let z = sweep().latents(&[7.0, 8.0, 9.0]);
        assert_eq!(z.len(), 8 * 3);
        let cell = |i: usize| &z[i * 3..i * 3 + 3];
        assert_eq!(cell(0), [1.5, 8.0, -0.5]);
        assert_eq!(cell(3), [1.5, 8.0, 2.5]);
        assert_eq!(cell(4), [0.5, 8.0, -0.5]);
    }

    #[test]
    fn bad_sweeps_say_what_is_wrong() {
        type Edit = fn(&mut GridSweep);
        let cases: [(Edit, &str); 4] = [
            (|s| s.x_dim = 3, "x_dim = 3 is out of range"),
            (|s| s.y_dim = 2, "both 2"),
            (|s| s.y_max = f32::NAN, "y range"),
            (|s| s.cols = MAX_GRID_SIDE + 1, "cols = 65"),
        ];
        for (edit, expected) in cases {
            let mut s = sweep();
            edit(&mut s);
            let error = s.check(3).unwrap_err();
            assert!(error.contains(expected), "{error}");
        }
        assert_eq!(sweep().check(3), Ok(()));
    }
}
