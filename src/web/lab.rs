//! The β-VAE lab's wasm edge: a `Lab` that the lab worker creates from the settings and a dataset
//! pack, then trains a few batches at a time. The training is `crate::train::lab`, the CLI's trainer.

use std::collections::HashMap;

use wasm_bindgen::prelude::*;

use crate::core::pack;
use crate::train::lab::{check_field, LabSession, LabSettings, LIMITS};

fn js_error(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

fn to_json(value: &impl serde::Serialize) -> Result<String, JsError> {
    serde_json::to_string(value).map_err(js_error)
}

/// Every setting's key, label, range and default as JSON, so the page's fields show the lab's limits.
#[wasm_bindgen(js_name = labLimits)]
pub fn lab_limits() -> Result<String, JsError> {
    to_json(&LIMITS)
}

/// Checks the settings (a JSON object of field texts); returns a JSON list of `{key, message}`, empty when all are valid.
#[wasm_bindgen(js_name = checkLabSettings)]
pub fn check_lab_settings(fields_json: &str) -> Result<String, JsError> {
    let fields: HashMap<String, String> = serde_json::from_str(fields_json).map_err(js_error)?;
    match LabSettings::parse(&fields) {
        Ok(_) => Ok("[]".into()),
        Err(errors) => to_json(&errors),
    }
}

/// A lab training session, as seen from the lab worker.
#[wasm_bindgen]
pub struct Lab {
    session: LabSession,
}

#[wasm_bindgen]
impl Lab {
    /// A new model for the settings (field texts as JSON) on an inflated dataset pack.
    #[wasm_bindgen(constructor)]
    pub fn new(fields_json: &str, pack_bytes: &[u8]) -> Result<Lab, JsError> {
        let fields: HashMap<String, String> =
            serde_json::from_str(fields_json).map_err(js_error)?;
        let settings = LabSettings::parse(&fields).map_err(|errors| {
            let list: Vec<String> = errors.into_iter().map(|e| e.message).collect();
            JsError::new(&list.join("; "))
        })?;
        let (kind, split) = pack::read(pack_bytes).map_err(js_error)?;
        let session = LabSession::new(kind, split, settings).map_err(js_error)?;
        Ok(Lab { session })
    }

    /// The dataset's name.
    pub fn dataset(&self) -> String {
        self.session.kind().name().to_string()
    }

    /// Trains up to `max_batches` batches (ending early at an epoch's end); returns the report as JSON.
    /// A diverging step fails with a message and leaves the last good weights.
    pub fn train(&mut self, max_batches: usize) -> Result<String, JsError> {
        let report = self.session.train(max_batches).map_err(js_error)?;
        to_json(&report)
    }

    /// The held-out figures, KL per dim, encodings, reconstructions and prior samples, as JSON.
    pub fn held_out(&self) -> Result<String, JsError> {
        to_json(&self.session.held_out().map_err(js_error)?)
    }

    /// Sets β from its field's text, from the next step on.
    pub fn set_beta(&mut self, text: &str) -> Result<(), JsError> {
        let beta = check_field("beta", text).map_err(|e| JsError::new(&e))?;
        self.session.set_beta(beta);
        Ok(())
    }

    /// Sets the learning rate from its field's text, from the next step on.
    pub fn set_lr(&mut self, text: &str) -> Result<(), JsError> {
        let lr = check_field("lr", text).map_err(|e| JsError::new(&e))?;
        self.session.set_lr(lr);
        Ok(())
    }

    /// Adds wall-clock seconds of training (the page's clock) to the training record.
    pub fn add_seconds(&mut self, seconds: f64) {
        self.session.add_seconds(seconds);
    }

    /// The trained model as a complete weights file (the format of docs/FORMAT.md).
    pub fn export(&self) -> Result<Vec<u8>, JsError> {
        self.session.export().map_err(js_error)
    }
}
