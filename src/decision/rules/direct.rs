//! Rules run straight on the typed input, without building the engine's
//! context.
//!
//! Building the context (every feature a rule set reads, as the engine's
//! reference-counted values) and running the engine's VM over it cost most of
//! a decision. For a rule set made only of what rules mostly are (names,
//! literals, lists of literals, comparisons, `==`, `in`, `and`, `or`, `not`,
//! arithmetic), each rule's compiled bytecode is translated once, opcode for
//! opcode, into a [`Program`] whose names are resolved to [`Place`]s, and run
//! here on values borrowed from the [`Input`].
//!
//! Each opcode does what the engine's VM does with the same operands. Where
//! the VM would fail, or a rule's result is not a boolean, or a value is one
//! this runner does not hold (an array or object), the run gives up and the
//! caller runs the whole set on the engine instead, so faults and their
//! messages are the engine's own.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use zen_expression::compiler::{Compare, FetchFastTarget, Jump, Opcode};

use super::super::features::{Input, Place, Uses, Val};

/// A literal of the program.
#[derive(Debug, Clone, PartialEq)]
enum Const {
    Null,
    Bool(bool),
    Number(Decimal),
    Text(Box<str>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Branch {
    Forward,
    IfTrue,
    IfFalse,
    IfNotNull,
}

/// A test of one value against a literal, fused from the opcodes that read
/// the value, push the literal and compare.
#[derive(Debug, Clone)]
enum Test {
    Equal(Const),
    NotEqual(Const),
    Compare(Compare, Decimal),
}

/// Jump targets are opcode indices.
#[derive(Debug, Clone)]
enum Op {
    Push(Const),
    /// A list of literals, then a jump over the opcodes that built it.
    List(Box<[Const]>, u32),
    Read(Place),
    /// `Read, Push, Equal [, Not]` or `Read, Push, Compare`.
    Test(Place, Test),
    /// `Read, Read, Equal [, Not]`: whether the two values are equal (with
    /// `true`) or differ (with `false`).
    Same(Place, Place, bool),
    /// `Jump(IfFalse), Pop`: the right of an `and`.
    And(u32),
    /// `Jump(IfTrue), Pop`: the right of an `or`.
    Or(u32),
    Pop,
    Not,
    Negate,
    Equal,
    In,
    Compare(Compare),
    Add,
    Subtract,
    Multiply,
    Divide,
    Modulo,
    Jump(Branch, u32),
    /// Stands for an opcode a [`Op::List`] jumps over.
    Skipped,
}

/// One rule, translated.
#[derive(Debug, Clone)]
pub struct Program {
    ops: Box<[Op]>,
}

/// A value on the runner's stack.
#[derive(Clone, Copy)]
enum Item<'a> {
    Null,
    Bool(bool),
    Number(Decimal),
    Text(&'a str),
    List(&'a [Const]),
    /// An object or an array from the input.
    Other,
}

impl<'a> Item<'a> {
    fn of(value: Val<'a>) -> Self {
        match value {
            Val::Null => Item::Null,
            Val::Bool(b) => Item::Bool(b),
            Val::Number(n) => Item::Number(n),
            Val::Text(s) => Item::Text(s),
            Val::Part(_) | Val::Json(_) | Val::Lists(_) => Item::Other,
        }
    }

    fn of_const(value: &'a Const) -> Self {
        match value {
            Const::Null => Item::Null,
            Const::Bool(b) => Item::Bool(*b),
            Const::Number(n) => Item::Number(*n),
            Const::Text(s) => Item::Text(s),
        }
    }
}

fn constant(op: &Opcode) -> Option<Const> {
    match op {
        Opcode::PushNull => Some(Const::Null),
        Opcode::PushBool(b) => Some(Const::Bool(*b)),
        Opcode::PushNumber(n) => Some(Const::Number(*n)),
        Opcode::PushString(s) => Some(Const::Text(s.as_ref().into())),
        _ => None,
    }
}

/// Fuses the commonest opcode sequences into one op each (none a jump lands
/// inside), and moves jump targets to the fused indices.
fn fuse(ops: &[Op], targets: &[bool]) -> Option<Vec<Op>> {
    let lands_inside = |start: usize, len: usize| {
        targets
            .get(start + 1..start + len)
            .is_none_or(|inside| inside.iter().any(|t| *t))
    };
    let mut out = Vec::with_capacity(ops.len());
    // Old index → new index, for the indices a fused op starts at.
    let mut moved = vec![None; ops.len() + 1];
    let mut at = 0;
    while at < ops.len() {
        moved[at] = Some(out.len());
        let (op, len) = match &ops[at..] {
            [Op::Read(p), Op::Push(c), Op::Equal, Op::Not, ..] if !lands_inside(at, 4) => {
                (Op::Test(p.clone(), Test::NotEqual(c.clone())), 4)
            }
            [Op::Read(p), Op::Push(c), Op::Equal, ..] if !lands_inside(at, 3) => {
                (Op::Test(p.clone(), Test::Equal(c.clone())), 3)
            }
            [Op::Read(p), Op::Push(Const::Number(n)), Op::Compare(c), ..]
                if !lands_inside(at, 3) =>
            {
                (Op::Test(p.clone(), Test::Compare(*c, *n)), 3)
            }
            [Op::Read(p), Op::Read(q), Op::Equal, Op::Not, ..] if !lands_inside(at, 4) => {
                (Op::Same(p.clone(), q.clone(), false), 4)
            }
            [Op::Read(p), Op::Read(q), Op::Equal, ..] if !lands_inside(at, 3) => {
                (Op::Same(p.clone(), q.clone(), true), 3)
            }
            [Op::Jump(Branch::IfFalse, to), Op::Pop, ..] if !lands_inside(at, 2) => {
                (Op::And(*to), 2)
            }
            [Op::Jump(Branch::IfTrue, to), Op::Pop, ..] if !lands_inside(at, 2) => (Op::Or(*to), 2),
            [Op::List(items, skip), ..] => (Op::List(items.clone(), 0), *skip as usize + 1),
            [op, ..] => (op.clone(), 1),
            [] => return None,
        };
        out.push(op);
        at += len;
    }
    moved[ops.len()] = Some(out.len());
    for op in &mut out {
        if let Op::Jump(_, to) | Op::And(to) | Op::Or(to) = op {
            let new = (*moved.get(*to as usize)?)?;
            *to = u32::try_from(new).ok()?;
        }
    }
    Some(out)
}

/// The VM's `==`.
fn equal(a: Item<'_>, b: Item<'_>) -> bool {
    match (a, b) {
        (Item::Number(a), Item::Number(b)) => a == b,
        (Item::Bool(a), Item::Bool(b)) => a == b,
        (Item::Text(a), Item::Text(b)) => a == b,
        (Item::Null, Item::Null) => true,
        _ => false,
    }
}

fn compare(comparison: Compare, a: Decimal, b: Decimal) -> bool {
    match comparison {
        Compare::More => a > b,
        Compare::MoreOrEqual => a >= b,
        Compare::Less => a < b,
        Compare::LessOrEqual => a <= b,
    }
}

impl Program {
    /// The rule's bytecode translated, its names resolved in the context
    /// `uses` describes; `None` when it uses anything this runner does not
    /// do (functions, closures, intervals, `$`, templates, indices, …).
    pub fn translate(bytecode: &[Opcode], uses: &Uses) -> Option<Program> {
        // Where jumps land: a literal list may only be collapsed when none
        // lands inside the opcodes that build it.
        let mut targets = vec![false; bytecode.len() + 1];
        for (at, op) in bytecode.iter().enumerate() {
            if let Opcode::Jump(_, by) = op {
                let to = at.checked_add(1)?.checked_add(usize::try_from(*by).ok()?)?;
                *targets.get_mut(to)? = true;
            }
        }
        let mut ops: Vec<Op> = Vec::with_capacity(bytecode.len());
        for (at, op) in bytecode.iter().enumerate() {
            let next = match op {
                Opcode::PushNull
                | Opcode::PushBool(_)
                | Opcode::PushNumber(_)
                | Opcode::PushString(_) => Op::Push(constant(op)?),
                Opcode::Pop => Op::Pop,
                Opcode::Not => Op::Not,
                Opcode::Negate => Op::Negate,
                Opcode::Equal => Op::Equal,
                Opcode::In => Op::In,
                Opcode::Compare(c) => Op::Compare(*c),
                Opcode::Add => Op::Add,
                Opcode::Subtract => Op::Subtract,
                Opcode::Multiply => Op::Multiply,
                Opcode::Divide => Op::Divide,
                Opcode::Modulo => Op::Modulo,
                Opcode::Jump(kind, by) => Op::Jump(
                    match kind {
                        Jump::Forward => Branch::Forward,
                        Jump::IfTrue => Branch::IfTrue,
                        Jump::IfFalse => Branch::IfFalse,
                        Jump::IfNotNull => Branch::IfNotNull,
                        Jump::Backward | Jump::IfEnd => return None,
                    },
                    // The VM adds the offset to the index after the jump.
                    u32::try_from(at + 1).ok()?.checked_add(*by)?,
                ),
                Opcode::FetchEnv(name) => Op::Read(Place::of(&[name.as_ref()], uses)?),
                Opcode::FetchFast(path) => {
                    let (FetchFastTarget::Begin, rest) = path.split_first()? else {
                        return None;
                    };
                    let mut names = Vec::with_capacity(rest.len());
                    for step in rest {
                        let FetchFastTarget::String(name) = step else {
                            return None;
                        };
                        names.push(name.as_ref());
                    }
                    Op::Read(Place::of(&names, uses)?)
                }
                Opcode::Array => {
                    // `[c1, …, cn]`: n literals, then n, then Array.
                    let Some(Op::Push(Const::Number(n))) = ops.last() else {
                        return None;
                    };
                    if !n.fract().is_zero() {
                        return None;
                    }
                    let n = n.to_usize()?;
                    let start = at.checked_sub(n + 1)?;
                    let items = ops[start..at - 1]
                        .iter()
                        .map(|op| match op {
                            Op::Push(c) => Some(c.clone()),
                            _ => None,
                        })
                        .collect::<Option<Box<[Const]>>>()?;
                    if targets[start + 1..=at].iter().any(|t| *t) {
                        return None;
                    }
                    ops[start] = Op::List(items, u32::try_from(at - start).ok()?);
                    for op in &mut ops[start + 1..] {
                        *op = Op::Skipped;
                    }
                    Op::Skipped
                }
                _ => return None,
            };
            ops.push(next);
        }
        Some(Program {
            ops: fuse(&ops, &targets)?.into(),
        })
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// The rule's result on `input`, or `None` when the engine must say
    /// (it would fail, or give something other than a boolean).
    fn run<'a>(&'a self, input: &'a Input, stack: &mut Vec<Item<'a>>) -> Option<bool> {
        stack.clear();
        let mut ip = 0usize;
        while let Some(op) = self.ops.get(ip) {
            ip += 1;
            match op {
                Op::Push(c) => stack.push(Item::of_const(c)),
                Op::List(items, skip) => {
                    stack.push(Item::List(items));
                    ip += *skip as usize;
                }
                Op::Read(place) => stack.push(Item::of(input.at(place).ok()?)),
                Op::Pop => {
                    stack.pop()?;
                }
                Op::Not => match stack.pop()? {
                    Item::Bool(b) => stack.push(Item::Bool(!b)),
                    _ => return None,
                },
                Op::Negate => match stack.pop()? {
                    Item::Number(n) => stack.push(Item::Number(-n)),
                    _ => return None,
                },
                Op::Test(place, test) => {
                    let value = Item::of(input.at(place).ok()?);
                    stack.push(Item::Bool(match test {
                        Test::Equal(c) => equal(value, Item::of_const(c)),
                        Test::NotEqual(c) => !equal(value, Item::of_const(c)),
                        Test::Compare(comparison, b) => {
                            let Item::Number(a) = value else {
                                return None;
                            };
                            compare(*comparison, a, *b)
                        }
                    }));
                }
                Op::Same(a, b, same) => {
                    let a = Item::of(input.at(a).ok()?);
                    let b = Item::of(input.at(b).ok()?);
                    stack.push(Item::Bool(equal(a, b) == *same));
                }
                Op::And(to) => match stack.last()? {
                    Item::Bool(false) => ip = *to as usize,
                    Item::Bool(true) => {
                        stack.pop();
                    }
                    _ => return None,
                },
                Op::Or(to) => match stack.last()? {
                    Item::Bool(true) => ip = *to as usize,
                    Item::Bool(false) => {
                        stack.pop();
                    }
                    _ => return None,
                },
                Op::Equal => {
                    let b = stack.pop()?;
                    let a = stack.pop()?;
                    stack.push(Item::Bool(equal(a, b)));
                }
                Op::In => {
                    let b = stack.pop()?;
                    let a = stack.pop()?;
                    let Item::List(list) = b else {
                        return None;
                    };
                    let found = match a {
                        Item::Number(a) => list
                            .iter()
                            .any(|c| matches!(c, Const::Number(b) if a == *b)),
                        Item::Text(a) => list
                            .iter()
                            .any(|c| matches!(c, Const::Text(b) if a == &**b)),
                        Item::Bool(a) => {
                            list.iter().any(|c| matches!(c, Const::Bool(b) if a == *b))
                        }
                        Item::Null => list.iter().any(|c| matches!(c, Const::Null)),
                        Item::List(_) | Item::Other => return None,
                    };
                    stack.push(Item::Bool(found));
                }
                Op::Compare(comparison) => {
                    let b = stack.pop()?;
                    let a = stack.pop()?;
                    let (Item::Number(a), Item::Number(b)) = (a, b) else {
                        return None;
                    };
                    stack.push(Item::Bool(compare(*comparison, a, b)));
                }
                Op::Add | Op::Subtract | Op::Multiply | Op::Divide | Op::Modulo => {
                    let b = stack.pop()?;
                    let a = stack.pop()?;
                    let (Item::Number(a), Item::Number(b)) = (a, b) else {
                        return None;
                    };
                    stack.push(match op {
                        Op::Add => Item::Number(a.checked_add(b)?),
                        Op::Subtract => Item::Number(a.checked_sub(b)?),
                        Op::Multiply => Item::Number(a.checked_mul(b)?),
                        // The engine gives null for a division by zero.
                        Op::Divide => a.checked_div(b).map_or(Item::Null, Item::Number),
                        _ => a.checked_rem(b).map_or(Item::Null, Item::Number),
                    });
                }
                Op::Jump(kind, to) => {
                    let jump = match kind {
                        Branch::Forward => true,
                        Branch::IfTrue => match stack.last()? {
                            Item::Bool(b) => *b,
                            _ => return None,
                        },
                        Branch::IfFalse => match stack.last()? {
                            Item::Bool(b) => !*b,
                            _ => return None,
                        },
                        Branch::IfNotNull => !matches!(stack.last()?, Item::Null),
                    };
                    if jump {
                        ip = *to as usize;
                    }
                }
                Op::Skipped => return None,
            }
        }
        match stack.pop()? {
            Item::Bool(b) => Some(b),
            _ => None,
        }
    }
}

/// Every enabled rule of a set, translated; `None` when one of them cannot be.
pub fn translate_all<'a>(
    bytecodes: impl IntoIterator<Item = &'a [Opcode]>,
    uses: &Uses,
) -> Option<Box<[Program]>> {
    bytecodes
        .into_iter()
        .map(|code| Program::translate(code, uses))
        .collect()
}

/// The indices of the rules that hit, or `None` when the engine must run the
/// set (some rule would fail or give no boolean on this input).
pub fn run_all(programs: &[Program], input: &Input) -> Option<Vec<usize>> {
    let depth = programs.iter().map(Program::len).max().unwrap_or(0);
    let mut stack = Vec::with_capacity(depth);
    let mut hits = Vec::new();
    for (index, program) in programs.iter().enumerate() {
        if program.run(input, &mut stack)? {
            hits.push(index);
        }
    }
    Some(hits)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::super::{features::Code, sample_input};
    use super::super::{compile, default_rule_set, CompiledRuleSet, Evaluation, Rule, RuleSet};
    use super::*;
    use serde_json::{json, Value};

    fn set(expressions: &[&str]) -> RuleSet {
        RuleSet {
            rules: expressions
                .iter()
                .enumerate()
                .map(|(i, e)| Rule {
                    name: format!("r{i}"),
                    expression: (*e).to_owned(),
                    weight: 0.1,
                    action: None,
                    is_final: false,
                    description: None,
                    enabled: true,
                })
                .collect(),
            ..RuleSet::default()
        }
    }

    /// Inputs that take every rule of the default pack both ways, and odd
    /// values (nulls, JSON extras of each type) besides.
    fn inputs() -> Vec<Input> {
        let mut out = Vec::new();
        let base = sample_input();
        out.push(base.clone());
        out.push(Input::default());
        let extras: [(&str, Value); 8] = [
            ("gateway_risk_level", json!("elevated")),
            ("gateway_risk_level", json!("normal")),
            ("gateway_risk_flagged", json!(true)),
            ("gateway_risk_flagged", json!(1)),
            ("gateway_cvc_check", json!("fail")),
            ("gateway_cvc_result", json!({"code": "2 No Match"})),
            ("gateway_cvc_check", json!(["fail"])),
            ("gateway_risk_level", json!(12.5)),
        ];
        for (name, value) in extras {
            let mut input = base.clone();
            input.extra.insert(name.to_owned(), value);
            out.push(input);
        }
        for status in ["blocked", "trusted", "normal"] {
            let mut input = base.clone();
            input.customer.status = Code::Borrowed(status);
            input.customer.fraud_labels = 2;
            input.customer.known_device = false;
            input.customer.avg_amount = 10.333_333_3;
            input.amount = Decimal::new(600, 0);
            out.push(input);
        }
        let mut input = base.clone();
        input.velocity.card.count_5m = 9;
        input.velocity.device.count_5m = 4;
        input.velocity.user.count_1h = 12;
        input.velocity.ip.count_1h = 25;
        input.velocity.cards_per_device = 3;
        input.velocity.cards_per_user = 4;
        input.velocity.devices_per_user = 5;
        input.amount = Decimal::new(150, 2);
        out.push(input);
        let mut input = base.clone();
        input.device.bot = Some("bad".into());
        input.device.tampering = true;
        input.device.tor = true;
        input.device.rooted = true;
        input.device.known = false;
        input.card_prepaid = true;
        input.amount = Decimal::new(2500, 0);
        input.email_domain = Some("mailinator.com".into());
        input.device_status = Code::Borrowed("pending");
        out.push(input);
        let mut input = base.clone();
        input.card_country = Some("GB".into());
        input.ip_country = Some("FR".into());
        input.billing_country = Some("DE".into());
        input.shipping_country = Some("CA".into());
        input.customer.known = false;
        input.amount = Decimal::new(1500, 0);
        input.subscriber_id = json!({"id": 12});
        out.push(input);
        // A first order: poorly recognized, on a device, card and IP that
        // already paid today, behind a VPN, over a tampered browser.
        for (amount, currency) in [
            (400_000, "SEK"),
            (15_000, "USD"),
            (3_000_000, "JPY"),
            (150, "EUR"),
        ] {
            let mut input = base.clone();
            input.customer.decisions = 0;
            input.device.confidence = Some(0.5);
            input.device.tampering = true;
            input.device.frida = currency == "JPY";
            input.device.vpn = true;
            input.device.virtual_machine = true;
            input.ip_country = Some("NL".into());
            input.email_domain = Some("yopmail.com".into());
            input.amount = Decimal::new(amount, 2);
            input.currency = Code::Borrowed(currency);
            out.push(input);
        }
        // A returning account on a device that never paid before, abroad.
        let mut input = base.clone();
        input.velocity.device.count_24h = 1;
        input.device.confidence = Some(0.6);
        input.ip_country = Some("NG".into());
        input.amount = Decimal::new(900, 0);
        input.customer.fraud_labels = 1;
        out.push(input);
        let mut input = base;
        input.card_country = None;
        input.shipping_country = None;
        input.email_domain = None;
        input.subscriber_id = json!("12");
        input.customer.age_days = f64::NAN;
        input.device.confidence = Some(1e300);
        out.push(input);
        out
    }

    fn engine(rules: &CompiledRuleSet, input: &Input) -> Evaluation {
        rules.evaluate(&input.context(&rules.uses))
    }

    /// Where the direct run answers, it answers what the engine does; where
    /// it does not, `evaluate_input` is the engine's answer.
    fn check(rules: &CompiledRuleSet) -> usize {
        let programs = rules.direct.as_ref().unwrap();
        let mut answered = 0;
        for input in inputs() {
            let expected = engine(rules, &input);
            let got = rules.evaluate_input(&input);
            assert_eq!(got.hits, expected.hits);
            assert_eq!(got.faults, expected.faults);
            for (index, program) in programs.iter().enumerate() {
                let Some(hits) = run_all(std::slice::from_ref(program), &input) else {
                    continue;
                };
                answered += 1;
                assert!(
                    !expected.faults.iter().any(|(i, _)| *i == index),
                    "rule {index} answered where the engine faults"
                );
                assert_eq!(
                    hits.is_empty(),
                    !expected.hits.contains(&index),
                    "rule {index}: {:?}",
                    rules.rules[index].name
                );
            }
        }
        answered
    }

    #[test]
    fn the_default_pack_runs_directly_with_the_engines_results() {
        let rules = compile(default_rule_set().unwrap(), 0).unwrap();
        let programs = rules
            .direct
            .as_ref()
            .expect("every default rule translates");
        // `customer.status == 'blocked'`: read, push, compare in one.
        assert_eq!(programs[0].len(), 1);
        let per_input = rules.rules.len();
        let answered = check(&rules);
        assert!(answered >= per_input * inputs().len() - 20, "{answered}");
        let hits: std::collections::BTreeSet<usize> = inputs()
            .iter()
            .flat_map(|i| rules.evaluate_input(i).hits)
            .collect();
        let missed: Vec<&str> = (0..per_input)
            .filter(|i| !hits.contains(i))
            .map(|i| rules.rules[i].name.as_str())
            .collect();
        assert!(missed.is_empty(), "rules that hit on no input: {missed:?}");
    }

    #[test]
    fn odd_expressions_agree_with_the_engine() {
        let expressions = [
            "amount / 0 == null",
            "amount % 7 > 1 and amount - 1 < amount + 1",
            "-amount < 0 and not (amount > 100000)",
            "amount in [1, 2, 120.5, 2500]",
            "currency in ['USD', 'EUR'] and not (currency not in ['USD'])",
            "null in [null, 1] and true in [false, true] and 5 in []",
            "subscriber_id.id == 12",
            "subscriber_id.x == null",
            "device.nonexistent == null and customer.status.x == null",
            "gateway_cvc_result.code == '2 No Match'",
            "gateway_cvc_check == null",
            "(amount ?? 1) > 0 and (card_country ?? 'XX') != 'YY'",
            "amount > 5 ? device.vpn : device.tor",
            "device == null or velocity.card == velocity.card",
            "[1, 2] == [1, 2]",
            "'abc' == 'abc' and 'a' != 'b'",
            "card_country > 5",
            "no_such_field > 5",
            "amount",
            "email_domain in ['example.com'] and amount",
            "gateway_cvc_check in ['fail']",
            "degraded == null and card_data_scrubbed == null",
            "customer.age_days > 1 and device.confidence < 2",
            "velocity.card.amount_24h >= 300 and velocity.card.count_24h * 2 == 6",
            "not customer.known",
            "customer.avg_amount * 3 < amount",
        ];
        let rules = compile(&set(&expressions), 1).unwrap();
        assert!(rules.direct.is_some());
        assert!(check(&rules) > expressions.len() * 5);
        for expression in expressions {
            let rules = compile(&set(&[expression]), 1).unwrap();
            check(&rules);
        }
    }

    #[test]
    fn what_the_runner_does_not_do_is_left_to_the_engine() {
        for expression in [
            "len(email_domain) > 3",
            "contains(email_domain, 'example')",
            "$root.amount > 1",
            "some([1, 2], # > 1)",
            "amount in [1..500]",
            "`${currency}` == 'USD'",
            "currency[0] == 'U'",
            "amount ^ 2 > 1",
            "[amount] == [amount]",
        ] {
            let rules = compile(&set(&[expression]), 1).unwrap();
            assert!(rules.direct.is_none(), "{expression}");
        }
    }

    #[test]
    fn names_the_rules_do_not_read_stay_out_of_the_direct_run_too() {
        // The template string hides `currency` from the context scan, so
        // the engine's context has no `currency`; the direct run must not
        // read it either (here the whole set is left to the engine).
        let rules = compile(&set(&["`${currency}` == 'USD'", "currency == 'USD'"]), 1).unwrap();
        let input = sample_input();
        assert_eq!(
            rules.evaluate_input(&input).hits,
            engine(&rules, &input).hits
        );
    }

    #[test]
    fn every_place_reads_what_the_context_holds() {
        fn leaves(prefix: &mut Vec<String>, value: &Value, out: &mut Vec<(Vec<String>, Value)>) {
            if let Value::Object(map) = value {
                for (name, member) in map {
                    prefix.push(name.clone());
                    leaves(prefix, member, out);
                    prefix.pop();
                }
            }
            if !prefix.is_empty() {
                out.push((prefix.clone(), value.clone()));
            }
        }
        for input in inputs() {
            let context = input.to_variable().to_value();
            let mut all = Vec::new();
            leaves(&mut Vec::new(), &context, &mut all);
            assert!(all.len() > 90, "{}", all.len());
            for (path, expected) in all {
                let names: Vec<&str> = path.iter().map(String::as_str).collect();
                let place = Place::of(&names, &Uses::ALL).unwrap();
                match input.at(&place) {
                    Ok(value) => assert_eq!(value.to_variable().to_value(), expected, "{path:?}"),
                    Err(_) => assert!(path.len() > 1, "{path:?}"),
                }
            }
        }
    }
}
