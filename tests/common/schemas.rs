//! The versioned event schemas of `docs/events/v1/` as validators: every event a test sees
//! reaching a sink is checked against its type's schema.

use serde_json::Value;

/// The schemas of `docs/events/v1/`, by `$id`: `$ref`s between them resolve here, never over
/// the network.
pub struct Schemas(std::collections::HashMap<String, Value>);

impl jsonschema::Retrieve for Schemas {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        self.0
            .get(uri.as_str())
            .cloned()
            .ok_or_else(|| format!("no schema {uri}").into())
    }
}

/// A validator for one event type's schema.
pub fn validator(event_type: &str) -> jsonschema::Validator {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/events/v1");
    let mut schemas = std::collections::HashMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) == Some("json") {
            let schema: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            schemas.insert(schema["$id"].as_str().unwrap().to_owned(), schema);
        }
    }
    let wanted = schemas
        .values()
        .find(|s| {
            s["$id"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/{event_type}.schema.json"))
        })
        .unwrap_or_else(|| panic!("no schema for {event_type}"))
        .clone();
    jsonschema::options()
        .should_validate_formats(true)
        .with_retriever(Schemas(schemas))
        .build(&wanted)
        .unwrap()
}

pub fn assert_valid(event: &Value) {
    let validator = validator(event["type"].as_str().unwrap());
    let errors: Vec<String> = validator
        .iter_errors(event)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{event}: {errors:?}");
}
