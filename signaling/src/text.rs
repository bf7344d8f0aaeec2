//! What people type (names, reasons, case text, chat) may not carry characters that hide or
//! reorder what others read: control characters, NUL, zero-width characters, and the
//! right-to-left overrides that make "exe.pdf" read "fdp.exe" (issue 13 item 10). They are
//! refused, not stripped: a name that looks the same as another but is not, or a reason whose
//! shown order differs from its stored order, should never be saved at all.

/// Where the text is shown decides what it may contain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextKind {
    /// One line that names someone or something (display names, site names, specialties):
    /// no line breaks, no invisible characters at all.
    Name,
    /// Free text (case summary, reasons, opinions, plans, chat): line breaks and tabs, and the
    /// joiners that emoji and some scripts need (U+200C, U+200D), are fine.
    Prose,
}

/// The first character `text` may not contain as `kind`, if any.
pub fn forbidden_char(text: &str, kind: TextKind) -> Option<char> {
    text.chars().find(|&c| forbidden(c, kind))
}

fn forbidden(c: char, kind: TextKind) -> bool {
    let prose_ok = matches!(c, '\n' | '\t' | '\r' | '\u{200C}' | '\u{200D}');
    if kind == TextKind::Prose && prose_ok {
        return false;
    }
    c.is_control()
        || matches!(c,
            // Zero-width space, non-joiner, joiner; word joiner and invisible operators;
            // byte-order mark used as a zero-width no-break space.
            '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}'
            // Direction marks, embeddings, overrides and isolates.
            | '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
            // Interlinear annotation and object replacement: hidden or placeholder text.
            | '\u{FFF9}'..='\u{FFFC}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_text_in_both_languages_passes() {
        for t in ["陈医生 (东县)", "Dr. Müller-Lüdenscheidt", "胸痛 3 天，\n心电图：ST 段抬高\t待查", "👨‍⚕️ 好的"]
        {
            assert_eq!(forbidden_char(t, TextKind::Prose), None, "{t}");
        }
        assert_eq!(forbidden_char("会诊中心 王协调", TextKind::Name), None);
    }

    #[test]
    fn hidden_and_reordering_characters_are_found() {
        let cases = [
            ("nul\u{0}", '\u{0}'),
            ("bell\u{7}", '\u{7}'),
            ("c1\u{85}", '\u{85}'),
            ("a\u{200B}b", '\u{200B}'),
            ("invoice\u{202E}fdp.exe", '\u{202E}'),
            ("iso\u{2067}late", '\u{2067}'),
            ("\u{FEFF}bom", '\u{FEFF}'),
        ];
        for (text, c) in cases {
            assert_eq!(forbidden_char(text, TextKind::Prose), Some(c), "{text:?}");
            assert_eq!(forbidden_char(text, TextKind::Name), Some(c), "{text:?}");
        }
    }

    #[test]
    fn names_are_one_line_without_joiners() {
        assert_eq!(forbidden_char("two\nlines", TextKind::Name), Some('\n'));
        assert_eq!(forbidden_char("tab\tbed", TextKind::Name), Some('\t'));
        assert_eq!(forbidden_char("admin\u{200D}", TextKind::Name), Some('\u{200D}'));
        assert_eq!(forbidden_char("two\nlines", TextKind::Prose), None);
    }
}
