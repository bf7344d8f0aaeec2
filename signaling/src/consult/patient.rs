//! The patient a consultation is about (issue 15): who, and the clinical question. Patient
//! data: never logged, never in the audit trail, shown whole only to those who may read the
//! consultation, sealed at rest when a key is set (`store::sealed`). Lists show a masked name,
//! sex and age, enough to tell cases apart.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::lifecycle::{LifecycleError, check_text as text, invalid};
use crate::text::TextKind;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Male,
    Female,
    /// Not known or not recorded.
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patient {
    pub name: String,
    pub sex: Sex,
    pub birth_date: Date,
    /// The requesting site's own number (门诊号 / 住院号).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// 主诉
    #[serde(default)]
    pub chief_complaint: String,
    /// 现病史
    #[serde(default)]
    pub history: String,
    /// 初步诊断
    #[serde(default)]
    pub diagnosis: String,
    /// 会诊目的
    #[serde(default)]
    pub purpose: String,
}

pub const MAX_NAME_CHARS: usize = 40;
pub const MAX_NUMBER_CHARS: usize = 32;
pub const MAX_CLINICAL_CHARS: usize = 4000;
/// Older than this is a typing error, not a patient.
pub const MAX_AGE_YEARS: i16 = 150;

impl Patient {
    /// The block as it may be stored: trimmed, each rule checked, with the field in the error.
    pub fn checked(self, today: Date) -> Result<Patient, LifecycleError> {
        let name = text("patient.name", TextKind::Name, &self.name, MAX_NAME_CHARS, true)?;
        if self.birth_date > today {
            return Err(invalid(
                "birth_date_in_future",
                "patient.birth_date",
                json!({}),
                "the date of birth lies in the future",
            ));
        }
        if age(self.birth_date, today).0 > MAX_AGE_YEARS {
            return Err(invalid(
                "birth_date_too_early",
                "patient.birth_date",
                json!({ "max": MAX_AGE_YEARS }),
                format!("the date of birth is more than {MAX_AGE_YEARS} years ago"),
            ));
        }
        let number = match self.number.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
            None => None,
            Some(n) => {
                let ok = n.chars().count() <= MAX_NUMBER_CHARS
                    && n.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/' | '.'));
                if !ok {
                    return Err(invalid(
                        "patient_number_invalid",
                        "patient.number",
                        json!({ "max": MAX_NUMBER_CHARS }),
                        format!("the patient number is up to {MAX_NUMBER_CHARS} letters, digits and - _ / ."),
                    ));
                }
                Some(n.to_owned())
            }
        };
        Ok(Patient {
            name,
            sex: self.sex,
            birth_date: self.birth_date,
            number,
            chief_complaint: text(
                "patient.chief_complaint",
                TextKind::Prose,
                &self.chief_complaint,
                MAX_CLINICAL_CHARS,
                false,
            )?,
            history: text("patient.history", TextKind::Prose, &self.history, MAX_CLINICAL_CHARS, false)?,
            diagnosis: text("patient.diagnosis", TextKind::Prose, &self.diagnosis, MAX_CLINICAL_CHARS, false)?,
            purpose: text("patient.purpose", TextKind::Prose, &self.purpose, MAX_CLINICAL_CHARS, false)?,
        })
    }

    /// What a list shows: enough to tell cases apart, not enough to expose the record.
    pub fn summary(&self, today: Date) -> PatientSummary {
        let (years, months) = age(self.birth_date, today);
        PatientSummary { masked_name: masked_name(&self.name), sex: self.sex, age_years: years, age_months: months }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PatientSummary {
    pub masked_name: String,
    pub sex: Sex,
    /// Whole years, and the months beyond them (an infant's age is in months).
    pub age_years: i16,
    pub age_months: i16,
}

/// 张三 → 张*, 张小三 → 张*三, 欧阳小明 → 欧**明; a Latin name keeps its first and last letter.
pub fn masked_name(name: &str) -> String {
    let chars: Vec<char> = name.chars().filter(|c| !c.is_whitespace()).collect();
    match chars.len() {
        0 => String::new(),
        1 => "*".into(),
        2 => format!("{}*", chars[0]),
        n => {
            let mut s = String::new();
            s.push(chars[0]);
            s.extend(std::iter::repeat_n('*', n - 2));
            s.push(chars[n - 1]);
            s
        }
    }
}

/// Completed years and months between `birth` and `today` (both calendar dates).
pub fn age(birth: Date, today: Date) -> (i16, i16) {
    let mut months = (i32::from(today.year()) - i32::from(birth.year())) * 12
        + (i32::from(today.month()) - i32::from(birth.month()));
    if today.day() < birth.day() {
        months -= 1;
    }
    let months = months.max(0);
    ((months / 12) as i16, (months % 12) as i16)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn names_are_masked_as_staff_expect() {
        assert_eq!(masked_name("张三"), "张*");
        assert_eq!(masked_name("张小三"), "张*三");
        assert_eq!(masked_name("欧阳小明"), "欧**明");
        assert_eq!(masked_name("Li"), "L*");
        assert_eq!(masked_name("王"), "*");
    }

    #[test]
    fn ages_count_completed_years_and_months() {
        let today = date(2026, 12, 6);
        assert_eq!(age(date(1960, 12, 6), today), (66, 0));
        assert_eq!(age(date(1960, 12, 7), today), (65, 11));
        assert_eq!(age(date(2026, 3, 20), today), (0, 8));
        assert_eq!(age(date(2026, 12, 6), today), (0, 0));
    }

    fn patient() -> Patient {
        Patient {
            name: " 张小三 ".into(),
            sex: Sex::Male,
            birth_date: date(1958, 4, 2),
            number: Some(" MZ-2026/0042 ".into()),
            chief_complaint: "胸痛 2 小时".into(),
            history: String::new(),
            diagnosis: String::new(),
            purpose: String::new(),
        }
    }

    #[test]
    fn the_block_is_trimmed_and_each_rule_names_its_field() {
        let today = date(2026, 12, 6);
        let p = patient().checked(today).unwrap();
        assert_eq!(p.name, "张小三");
        assert_eq!(p.number.as_deref(), Some("MZ-2026/0042"));
        let err = |p: Patient| match p.checked(today).unwrap_err() {
            LifecycleError::Invalid { code, field, .. } => (code, field),
            LifecycleError::InvalidCharacters { field } => ("invalid_characters", field),
            other => panic!("{other:?}"),
        };
        assert_eq!(err(Patient { name: " ".into(), ..patient() }), ("text_required", "patient.name"));
        assert_eq!(
            err(Patient { birth_date: date(2027, 1, 1), ..patient() }),
            ("birth_date_in_future", "patient.birth_date")
        );
        assert_eq!(
            err(Patient { birth_date: date(1850, 1, 1), ..patient() }),
            ("birth_date_too_early", "patient.birth_date")
        );
        assert_eq!(
            err(Patient { number: Some("12 34".into()), ..patient() }),
            ("patient_number_invalid", "patient.number")
        );
        assert_eq!(err(Patient { name: "张\u{202e}三".into(), ..patient() }), ("invalid_characters", "patient.name"));
    }
}
