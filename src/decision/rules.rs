//! A subscriber's rule set: its shape, its limits, and its compiled form.
//!
//! A rule is a boolean expression in GoRules' zen expression language
//! (`amount > 500 and device.vpn`), compiled once per rule-set version into
//! bytecode and evaluated per decision against the features of
//! [`crate::decision`]. Validation is pure and names the rule at fault so an
//! analyst can fix it. Every subscriber without a stored rule set uses the
//! [default pack](default_rule_set), version 0.

mod direct;

use std::cell::RefCell;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use zen_expression::expression::Standard;
use zen_expression::scope::Scope;
use zen_expression::variable::Variable;
use zen_expression::vm::VM;
use zen_expression::{compile_expression, Expression};

use super::scrub::masked_id;

pub const DEFAULT_REVIEW_THRESHOLD: f64 = 0.30;
pub const DEFAULT_BLOCK_THRESHOLD: f64 = 0.70;
pub const MAX_RULES: usize = 500;
const MAX_NAME: usize = 128;
const MAX_EXPRESSION: usize = 4096;
const MAX_DESCRIPTION: usize = 1024;

/// Ordered from the mildest to the strictest, so the stricter of two actions
/// is their `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    Review,
    Block,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Review => "review",
            Self::Block => "block",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "allow" => Some(Self::Allow),
            "review" => Some(Self::Review),
            "block" => Some(Self::Block),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Rule {
    /// Unique within the set; reported in `rule_hits`.
    pub name: String,
    /// A boolean expression over the scoring features.
    pub expression: String,
    /// Added to the score when the rule hits, in [-1, 1].
    pub weight: f64,
    /// An action the rule forces when it hits (the stricter action wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    /// With `action` `allow` or `block`: the action overrides the others
    /// (a final `block` beats a final `allow`, which beats everything else;
    /// see [`crate::decision::decide`]).
    #[serde(default, rename = "final", skip_serializing_if = "is_false")]
    pub is_final: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if signature
pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

fn enabled_by_default() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RuleSet {
    pub review_threshold: f64,
    pub block_threshold: f64,
    pub rules: Vec<Rule>,
}

impl Default for RuleSet {
    fn default() -> Self {
        Self {
            review_threshold: DEFAULT_REVIEW_THRESHOLD,
            block_threshold: DEFAULT_BLOCK_THRESHOLD,
            rules: Vec::new(),
        }
    }
}

fn number(value: Option<&Value>, default: f64, what: &str) -> Result<f64, String> {
    match value {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) => n
            .as_f64()
            .ok_or_else(|| format!("Invalid '{what}': not a number")),
        Some(_) => Err(format!("Invalid '{what}': expected a number")),
    }
}

fn string<'a>(
    rule: &'a Map<String, Value>,
    field: &str,
    label: &str,
    max: usize,
) -> Result<Option<&'a str>, String> {
    match rule.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => {
            Err(format!("{label}: '{field}' must not be empty"))
        }
        Some(Value::String(s)) if s.chars().count() > max => Err(format!(
            "{label}: '{field}' must be at most {max} characters"
        )),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{label}: '{field}' must be a string")),
    }
}

/// Validates a rule-set document. Errors are `400` messages.
pub fn parse_rule_set(body: &Map<String, Value>) -> Result<RuleSet, String> {
    let review = number(
        body.get("review_threshold"),
        DEFAULT_REVIEW_THRESHOLD,
        "review_threshold",
    )?;
    let block = number(
        body.get("block_threshold"),
        DEFAULT_BLOCK_THRESHOLD,
        "block_threshold",
    )?;
    if !(0.0..=1.0).contains(&review) || !(0.0..=1.0).contains(&block) {
        return Err("Invalid thresholds: each must lie in [0, 1]".into());
    }
    if review > block {
        return Err("Invalid thresholds: review_threshold must not exceed block_threshold".into());
    }
    let items = match body.get("rules") {
        None | Some(Value::Null) => return Err("Missing 'rules' in request body".into()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err("Invalid 'rules': expected an array".into()),
    };
    if items.len() > MAX_RULES {
        return Err(format!("Invalid 'rules': at most {MAX_RULES} rules"));
    }
    let mut rules = Vec::with_capacity(items.len());
    let mut names = std::collections::HashSet::new();
    for (index, item) in items.iter().enumerate() {
        let Value::Object(rule) = item else {
            return Err(format!("Invalid rule #{}: expected an object", index + 1));
        };
        let position = format!("Invalid rule #{}", index + 1);
        // Names and descriptions are stored and shown in every hit: a card
        // number in one is masked as in a transaction.
        let name = string(rule, "name", &position, MAX_NAME)?
            .map(masked_id)
            .ok_or_else(|| format!("{position}: missing 'name'"))?;
        let label = format!("Invalid rule '{name}'");
        if !names.insert(name.to_string()) {
            return Err(format!("{label}: the name is used twice"));
        }
        let expression = string(rule, "expression", &label, MAX_EXPRESSION)?
            .ok_or_else(|| format!("{label}: missing 'expression'"))?;
        let weight = match rule.get("weight") {
            None | Some(Value::Null) => return Err(format!("{label}: missing 'weight'")),
            Some(v) => v
                .as_f64()
                .ok_or_else(|| format!("{label}: 'weight' must be a number"))?,
        };
        if !(-1.0..=1.0).contains(&weight) {
            return Err(format!("{label}: 'weight' must lie in [-1, 1]"));
        }
        let action = string(rule, "action", &label, 16)?
            .map(|a| {
                Action::parse(a)
                    .ok_or_else(|| format!("{label}: 'action' must be allow, review or block"))
            })
            .transpose()?;
        let is_final = match rule.get("final") {
            None | Some(Value::Null) | Some(Value::Bool(false)) => false,
            Some(Value::Bool(true)) => true,
            Some(_) => return Err(format!("{label}: 'final' must be a boolean")),
        };
        if is_final && !matches!(action, Some(Action::Allow | Action::Block)) {
            return Err(format!("{label}: 'final' needs 'action' allow or block"));
        }
        let description = string(rule, "description", &label, MAX_DESCRIPTION)?
            .map(|d| masked_id(d).into_owned());
        let enabled = match rule.get("enabled") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(format!("{label}: 'enabled' must be a boolean")),
        };
        rules.push(Rule {
            name: name.into_owned(),
            expression: expression.to_owned(),
            weight,
            action,
            is_final,
            description,
            enabled,
        });
    }
    Ok(RuleSet {
        review_threshold: review,
        block_threshold: block,
        rules,
    })
}

/// The default pack, parsed once. Start-up fails if it does not parse and
/// compile (a test guarantees it does).
static DEFAULT_PACK: LazyLock<Result<RuleSet, String>> = LazyLock::new(|| {
    let body: Value = serde_json::from_str(include_str!("rules/default_pack.json"))
        .map_err(|e| format!("default rule pack: {e}"))?;
    let Value::Object(body) = body else {
        return Err("default rule pack: not an object".into());
    };
    parse_rule_set(&body).map_err(|e| format!("default rule pack: {e}"))
});

/// The rule set every subscriber starts with (version 0), documented rule by
/// rule in docs/features-and-rules.md.
pub fn default_rule_set() -> Result<&'static RuleSet, String> {
    DEFAULT_PACK.as_ref().map_err(Clone::clone)
}

/// One rule, ready to run.
pub struct CompiledRule {
    pub name: String,
    pub weight: f64,
    pub action: Option<Action>,
    pub is_final: bool,
    program: Expression<Standard>,
}

/// A rule-set version with every enabled rule compiled to bytecode. Built once
/// per version and shared by every decision that uses it.
pub struct CompiledRuleSet {
    pub version: i64,
    pub review_threshold: f64,
    pub block_threshold: f64,
    pub rules: Vec<CompiledRule>,
    /// Every rule in one program (`[(r1), (r2), …]`): one VM run per decision
    /// instead of one per rule. When any rule fails on an input the whole
    /// program fails, and the rules run one by one to say which.
    combined: Option<Expression<Standard>>,
    /// The parts of the context the enabled rules read.
    pub uses: super::features::Uses,
    /// Every enabled rule translated to run on the input itself, when each
    /// can be (see [`direct`]).
    direct: Option<Box<[direct::Program]>>,
}

/// Why a rule neither hit nor missed on one decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleFault {
    /// The expression failed while running (a missing field compared with a
    /// number, a type mismatch).
    Error(String),
    /// It ran but gave something other than `true` or `false`.
    NotBoolean(&'static str),
}

impl std::fmt::Display for RuleFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Error(e) => f.write_str(e),
            Self::NotBoolean(kind) => write!(f, "evaluated to {kind}, not a boolean"),
        }
    }
}

/// The outcome of running a rule set over one decision's features: the
/// indices (into [`CompiledRuleSet::rules`]) of the rules that hit, and the
/// rules that faulted. A faulted rule does not hit.
#[derive(Debug, Default)]
pub struct Evaluation {
    pub hits: Vec<usize>,
    pub faults: Vec<(usize, RuleFault)>,
}

thread_local! {
    // The VM keeps its stack between runs; one per thread avoids reallocating
    // it for every rule of every decision.
    static VM_CELL: RefCell<VM> = RefCell::new(VM::new());
}

/// Compiles every enabled rule. The error is a `400` message naming the rule.
/// How deep an expression may nest brackets. The expression engine's parser
/// spends memory exponential in the depth of some nestings (sixty `[` took
/// more than 2 GiB), and no rule a person writes comes near this.
const MAX_NESTING: usize = 16;

/// The deepest nesting of `(`, `[` and `{` outside string literals.
fn nesting(expression: &str) -> usize {
    let (mut depth, mut deepest, mut quote) = (0usize, 0usize, None);
    let mut chars = expression.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(_), '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, '(' | '[' | '{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (None, ')' | ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

pub fn compile(set: &RuleSet, version: i64) -> Result<CompiledRuleSet, String> {
    let mut rules = Vec::with_capacity(set.rules.len());
    // Disabled rules must compile too: enabling one later must not be the
    // moment its typo shows.
    for rule in &set.rules {
        if nesting(&rule.expression) > MAX_NESTING {
            return Err(format!(
                "Invalid rule '{}': the expression nests brackets more than {MAX_NESTING} deep",
                rule.name
            ));
        }
        let program = compile_expression(&rule.expression).map_err(|e| {
            format!(
                "Invalid rule '{}': the expression does not compile: {e}",
                rule.name
            )
        })?;
        if !rule.enabled {
            continue;
        }
        rules.push(CompiledRule {
            name: rule.name.clone(),
            weight: rule.weight,
            action: rule.action,
            is_final: rule.is_final && rule.action.is_some(),
            program,
        });
    }
    // Each expression compiled alone, so each is balanced and wrapping it in
    // parentheses cannot change how its neighbours parse.
    let source = set
        .rules
        .iter()
        .filter(|r| r.enabled)
        .map(|r| format!("({})", r.expression))
        .collect::<Vec<_>>()
        .join(", ");
    let combined = compile_expression(&format!("[{source}]")).ok();
    let uses = super::features::Uses::of(
        set.rules
            .iter()
            .filter(|r| r.enabled)
            .map(|r| r.expression.as_str()),
    );
    let direct = direct::translate_all(rules.iter().map(|r| &**r.program.bytecode()), &uses);
    Ok(CompiledRuleSet {
        version,
        review_threshold: set.review_threshold,
        block_threshold: set.block_threshold,
        rules,
        combined,
        uses,
        direct,
    })
}

fn kind(value: &Variable) -> &'static str {
    match value {
        Variable::Null => "null",
        Variable::Bool(_) => "a boolean",
        Variable::Number(_) => "a number",
        Variable::String(_) => "a string",
        Variable::Array(_) => "an array",
        Variable::Object(_) => "an object",
        Variable::Dynamic(_) => "a value",
    }
}

impl CompiledRuleSet {
    /// Whether every rule runs on the input itself, without the engine's
    /// context (see [`direct`]).
    pub fn runs_directly(&self) -> bool {
        self.direct.is_some()
    }

    /// Runs every rule over `input`: on the input itself when the set allows
    /// and the rules all give a boolean, else on the engine over the
    /// context, so the outcome is the engine's either way.
    pub fn evaluate_input(&self, input: &super::Input) -> Evaluation {
        if let Some(programs) = &self.direct {
            if let Some(hits) = direct::run_all(programs, input) {
                return Evaluation {
                    hits,
                    faults: Vec::new(),
                };
            }
        }
        self.evaluate(&input.context(&self.uses))
    }

    /// Runs every rule over `context` (see [`super::Input::to_variable`]).
    /// Pure apart from the per-thread VM scratch space.
    pub fn evaluate(&self, context: &Variable) -> Evaluation {
        let scope = Scope::new(context.clone());
        let mut out = Evaluation::default();
        if let Some(combined) = &self.combined {
            let results = with_vm(|vm| match combined.evaluate_with_scope(&scope, vm) {
                Ok(Variable::Array(results)) => {
                    let results = results.borrow();
                    (results.len() == self.rules.len()).then(|| {
                        results
                            .iter()
                            .map(|result| match result {
                                Variable::Bool(hit) => Ok(*hit),
                                other => Err(RuleFault::NotBoolean(kind(other))),
                            })
                            .collect::<Vec<_>>()
                    })
                }
                _ => None,
            });
            if let Some(Some(results)) = results {
                for (index, result) in results.into_iter().enumerate() {
                    match result {
                        Ok(true) => out.hits.push(index),
                        Ok(false) => {}
                        Err(fault) => out.faults.push((index, fault)),
                    }
                }
                return out;
            }
        }
        // One by one: a rule the combined program cannot run (or that makes
        // the engine panic) faults alone, and the others still decide.
        for (index, rule) in self.rules.iter().enumerate() {
            match with_vm(|vm| rule.program.evaluate_with_scope(&scope, vm)) {
                Some(Ok(Variable::Bool(true))) => out.hits.push(index),
                Some(Ok(Variable::Bool(false))) => {}
                Some(Ok(other)) => out
                    .faults
                    .push((index, RuleFault::NotBoolean(kind(&other)))),
                Some(Err(err)) => out.faults.push((index, RuleFault::Error(err.to_string()))),
                None => out.faults.push((
                    index,
                    RuleFault::Error("the expression engine failed on this input".into()),
                )),
            }
        }
        out
    }
}

/// Runs `run` with this thread's VM. The expression engine can panic on
/// some expressions (an overflow in its VM on `!``` was found by fuzzing); a
/// rule set must never take a request down with it, so a panic answers
/// `None` and the VM, possibly left half-way, is replaced.
fn with_vm<T>(run: impl FnOnce(&mut VM) -> T) -> Option<T> {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        VM_CELL.with(|cell| match cell.try_borrow_mut() {
            Ok(mut vm) => run(&mut vm),
            // Re-entered on this thread (cannot happen: evaluation never
            // calls back into itself); a fresh VM keeps it correct.
            Err(_) => run(&mut VM::new()),
        })
    }));
    if result.is_err() {
        VM_CELL.with(|cell| {
            if let Ok(mut vm) = cell.try_borrow_mut() {
                *vm = VM::new();
            }
        });
    }
    result.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expression_that_makes_the_engine_panic_faults_instead() {
        let set = RuleSet {
            review_threshold: 0.3,
            block_threshold: 0.7,
            rules: vec![
                Rule {
                    name: "fuzzed".into(),
                    expression: "!``".into(),
                    weight: 0.1,
                    action: None,
                    is_final: false,
                    description: None,
                    enabled: true,
                },
                Rule {
                    name: "always".into(),
                    expression: "true".into(),
                    weight: 0.1,
                    action: None,
                    is_final: false,
                    description: None,
                    enabled: true,
                },
            ],
        };
        let Ok(compiled) = compile(&set, 1) else {
            return; // refused at compile time: as good
        };
        let out = compiled.evaluate(&Variable::Null);
        // The rule that broke the engine faults; its neighbour still hits.
        assert_eq!(out.hits, vec![1]);
        assert_eq!(out.faults.len(), 1);
        assert_eq!(out.faults[0].0, 0);
        // The thread's engine still works afterwards.
        let plain = compile(&default_rule_set().unwrap().clone(), 0).unwrap();
        let _ = plain.evaluate(&Variable::Null);
    }

    #[test]
    fn deeply_nested_expressions_are_refused_before_the_engine_sees_them() {
        let fuzzed = include_str!(
            "../../fuzz/regressions/rule_set/oom-6e133ab055bdefad9a4231e3f2e1d6d62ab7bb0e"
        );
        let set = |expression: &str| RuleSet {
            review_threshold: 0.3,
            block_threshold: 0.7,
            rules: vec![Rule {
                name: "deep".into(),
                expression: expression.into(),
                weight: 0.1,
                action: None,
                is_final: false,
                description: None,
                enabled: true,
            }],
        };
        let err = compile(&set(fuzzed), 1).err().unwrap();
        assert!(err.contains("nests brackets more than 16 deep"), "{err}");
        let sixteen = format!("{}1{} == 1", "(".repeat(16), ")".repeat(16));
        assert!(compile(&set(&sixteen), 1).is_ok());
        assert!(compile(&set(&format!("({sixteen})")), 1).is_err());
        // Brackets inside strings are text.
        assert!(compile(&set(&format!("email == '{}'", "[".repeat(40))), 1).is_ok());
    }
    use serde_json::json;

    fn parse(v: Value) -> Result<RuleSet, String> {
        parse_rule_set(v.as_object().unwrap())
    }

    #[test]
    fn a_valid_set_round_trips_with_default_thresholds() {
        let set = parse(json!({"rules": [
            {"name": "Big", "expression": "amount > 500", "weight": 0.2},
            {"name": "Trusted", "expression": "customer.status == 'trusted'", "weight": -0.3, "action": "allow"}
        ]}))
        .unwrap();
        assert_eq!(set.review_threshold, 0.30);
        assert_eq!(set.rules[1].action, Some(Action::Allow));
        let again: RuleSet = serde_json::from_value(serde_json::to_value(&set).unwrap()).unwrap();
        assert_eq!(again, set);
    }

    #[test]
    fn errors_name_the_rule() {
        let err =
            parse(json!({"rules": [{"name": "Big", "expression": "x", "weight": 2}]})).unwrap_err();
        assert_eq!(err, "Invalid rule 'Big': 'weight' must lie in [-1, 1]");
        let err = parse(
            json!({"rules": [{"name": "A", "expression": "x", "weight": 0.1},
                                          {"name": "A", "expression": "y", "weight": 0.1}]}),
        )
        .unwrap_err();
        assert!(err.contains("used twice"), "{err}");
        let err = parse(json!({"rules": [{"expression": "x", "weight": 0.1}]})).unwrap_err();
        assert_eq!(err, "Invalid rule #1: missing 'name'");
        let err = parse(json!({"review_threshold": 0.8, "block_threshold": 0.5, "rules": []}))
            .unwrap_err();
        assert!(err.contains("must not exceed"), "{err}");
        assert!(parse(json!({})).is_err());
    }
}
