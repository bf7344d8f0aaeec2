//! The case panel in the call (issue 15): everyone looks at the same attachment, on the same
//! page or slice, at the same zoom, pan and window, each browser fetching the image from the
//! server at full resolution (a shared screen over a county link loses exactly the detail a
//! radiologist needs). One presenter decides the view; everyone points and marks in their own
//! colour. The room owns this state (`Room::case`); the wire messages are in `protocol.rs`.

use serde::{Deserialize, Serialize};

/// What everyone sees. The server checks the shape, not the attachment: each browser fetches
/// the image through the API, which decides who may see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseView {
    pub attachment: String,
    /// The image of a DICOM attachment in viewing order, or the page of a PDF.
    #[serde(default)]
    pub image: u32,
    #[serde(default)]
    pub frame: u32,
    /// `lung`, `soft_tissue`, `bone`, `brain`, `custom` (with `center` and `width`), or none:
    /// the file's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub center: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<f64>,
    /// 1 = the whole image fits; up to 16.
    #[serde(default = "one")]
    pub zoom: f64,
    /// The point of the image at the middle of the view, as fractions of its width and height.
    #[serde(default = "half")]
    pub center_x: f64,
    #[serde(default = "half")]
    pub center_y: f64,
}

fn one() -> f64 {
    1.0
}

fn half() -> f64 {
    0.5
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkKind {
    /// From the first point to the second.
    Arrow,
    /// Centred on the first point, through the second.
    Circle,
    /// Free hand, through every point.
    Line,
}

/// A mark as a participant draws it: points as fractions of the image's width and height.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkInput {
    pub kind: MarkKind,
    pub points: Vec<[f64; 2]>,
}

/// A mark as everyone sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Mark {
    pub id: u64,
    pub participant: String,
    /// Index into the clients' palette: each participant keeps one colour for the room's life.
    pub color: u8,
    pub kind: MarkKind,
    pub points: Vec<[f64; 2]>,
}

pub const MAX_POINTS: usize = 256;
pub const MAX_MARKS: usize = 200;
pub const PALETTE: u8 = 8;
const MAX_ATTACHMENT_ID: usize = 64;

/// A refusal: the error code and its explanation.
pub type Refusal = (&'static str, &'static str);

fn unit(v: f64) -> bool {
    (0.0..=1.0).contains(&v)
}

impl CaseView {
    fn check(&self) -> Result<(), Refusal> {
        let id_ok = !self.attachment.is_empty()
            && self.attachment.len() <= MAX_ATTACHMENT_ID
            && self.attachment.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !id_ok {
            return Err(("invalid_message", "attachment is an attachment id"));
        }
        if !(1.0..=16.0).contains(&self.zoom) || !unit(self.center_x) || !unit(self.center_y) {
            return Err(("invalid_message", "zoom is 1 to 16; center_x and center_y are 0 to 1"));
        }
        match self.window.as_deref() {
            None | Some("lung" | "soft_tissue" | "bone" | "brain") => Ok(()),
            Some("custom")
                if self.center.is_some_and(f64::is_finite) && self.width.is_some_and(|w| w.is_finite() && w > 0.0) =>
            {
                Ok(())
            }
            _ => Err((
                "invalid_message",
                "window is lung, soft_tissue, bone, brain, or custom with center and width > 0",
            )),
        }
    }

    /// The same picture (marks belong to a picture; zoom, pan and window do not change it).
    fn same_picture(&self, other: &CaseView) -> bool {
        self.attachment == other.attachment && self.image == other.image && self.frame == other.frame
    }
}

/// What the room must tell, and to whom.
#[derive(Debug, PartialEq)]
pub enum Say {
    /// The whole state, to every joined member.
    State,
    /// A pointer, to every joined member but the one pointing.
    Pointer { participant: String, color: u8, at: Option<[f64; 2]> },
    /// A new mark, to every joined member.
    Mark(Mark),
}

#[derive(Debug, Default)]
pub struct CasePanel {
    pub view: Option<CaseView>,
    pub presenter: Option<String>,
    pub marks: Vec<Mark>,
    next_mark: u64,
    colors: std::collections::HashMap<String, u8>,
}

impl CasePanel {
    fn color(&mut self, who: &str) -> u8 {
        let next = (self.colors.len() % usize::from(PALETTE)) as u8;
        *self.colors.entry(who.to_owned()).or_insert(next)
    }

    /// `who` shows `view`. The presenter may; so may a host, who then presents (taking the
    /// role over, as a chair takes the floor back); no one else.
    pub fn show(&mut self, who: &str, host: bool, view: CaseView) -> Result<Say, Refusal> {
        if self.presenter.as_deref() != Some(who) && !host {
            return Err(("not_presenter", "only the presenter (or a host) changes what everyone sees"));
        }
        view.check()?;
        if !self.view.as_ref().is_some_and(|v| v.same_picture(&view)) {
            self.marks.clear();
        }
        self.view = Some(view);
        self.presenter = Some(who.to_owned());
        Ok(Say::State)
    }

    /// The presenter or a host closes the panel for everyone.
    pub fn close(&mut self, who: &str, host: bool) -> Result<Say, Refusal> {
        if self.presenter.as_deref() != Some(who) && !host {
            return Err(("not_presenter", "only the presenter (or a host) closes the case panel"));
        }
        self.view = None;
        self.presenter = None;
        self.marks.clear();
        Ok(Say::State)
    }

    /// The presenter or a host hands the role to `to` (a joined member: the room checks).
    pub fn hand_over(&mut self, who: &str, host: bool, to: &str) -> Result<Say, Refusal> {
        if self.presenter.as_deref() != Some(who) && !host {
            return Err(("not_presenter", "only the presenter (or a host) passes the role on"));
        }
        if self.view.is_none() {
            return Err(("no_case_view", "nothing is shown"));
        }
        self.presenter = Some(to.to_owned());
        Ok(Say::State)
    }

    /// `who` points at `at` (fractions of the image), or stops pointing (`None`).
    pub fn point(&mut self, who: &str, at: Option<[f64; 2]>) -> Result<Say, Refusal> {
        if self.view.is_none() {
            return Err(("no_case_view", "nothing is shown"));
        }
        if at.is_some_and(|[x, y]| !unit(x) || !unit(y)) {
            return Err(("invalid_message", "x and y are 0 to 1"));
        }
        let color = self.color(who);
        Ok(Say::Pointer { participant: who.to_owned(), color, at })
    }

    /// `who` draws a mark on the picture shown.
    pub fn mark(&mut self, who: &str, input: MarkInput) -> Result<Say, Refusal> {
        if self.view.is_none() {
            return Err(("no_case_view", "nothing is shown"));
        }
        let needs = match input.kind {
            MarkKind::Arrow | MarkKind::Circle => input.points.len() == 2,
            MarkKind::Line => (2..=MAX_POINTS).contains(&input.points.len()),
        };
        if !needs || input.points.iter().any(|[x, y]| !unit(*x) || !unit(*y)) {
            return Err(("invalid_message", "an arrow or circle has 2 points, a line 2 to 256; each 0 to 1"));
        }
        if self.marks.len() >= MAX_MARKS {
            return Err(("too_many_marks", "clear the marks before drawing more"));
        }
        self.next_mark += 1;
        let mark = Mark {
            id: self.next_mark,
            participant: who.to_owned(),
            color: self.color(who),
            kind: input.kind,
            points: input.points,
        };
        self.marks.push(mark.clone());
        Ok(Say::Mark(mark))
    }

    /// The presenter or a host wipes the marks.
    pub fn clear(&mut self, who: &str, host: bool) -> Result<Say, Refusal> {
        if self.presenter.as_deref() != Some(who) && !host {
            return Err(("not_presenter", "only the presenter (or a host) clears the marks"));
        }
        self.marks.clear();
        Ok(Say::State)
    }

    /// `who` left the room: a presenter who leaves leaves the view without one (a host
    /// takes it on by showing).
    pub fn left(&mut self, who: &str) -> Option<Say> {
        if self.presenter.as_deref() == Some(who) {
            self.presenter = None;
            return Some(Say::State);
        }
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn view(image: u32) -> CaseView {
        CaseView {
            attachment: "a1".into(),
            image,
            frame: 0,
            window: Some("lung".into()),
            center: None,
            width: None,
            zoom: 2.0,
            center_x: 0.4,
            center_y: 0.6,
        }
    }

    #[test]
    fn the_presenter_decides_the_view_and_a_host_may_take_it_over() {
        let mut p = CasePanel::default();
        assert_eq!(p.show("trainee", false, view(0)).unwrap_err().0, "not_presenter");
        assert_eq!(p.show("spec", true, view(0)).unwrap(), Say::State);
        assert_eq!(p.presenter.as_deref(), Some("spec"));
        p.hand_over("spec", true, "doc").unwrap();
        assert!(p.show("doc", false, view(3)).is_ok(), "the presenter, not a host, scrolls");
        assert_eq!(p.show("trainee", false, view(4)).unwrap_err().0, "not_presenter");
        p.show("spec", true, view(5)).unwrap();
        assert_eq!(p.presenter.as_deref(), Some("spec"), "a host takes the role back by showing");
        assert_eq!(p.left("spec"), Some(Say::State));
        assert_eq!(p.presenter, None);
        assert!(p.view.is_some(), "the view stays when its presenter goes");
    }

    #[test]
    fn marks_belong_to_their_picture_and_each_person_keeps_a_colour() {
        let mut p = CasePanel::default();
        assert_eq!(
            p.mark("doc", MarkInput { kind: MarkKind::Arrow, points: vec![[0.1, 0.1], [0.2, 0.2]] }).unwrap_err().0,
            "no_case_view"
        );
        p.show("spec", true, view(0)).unwrap();
        let arrow = MarkInput { kind: MarkKind::Arrow, points: vec![[0.1, 0.1], [0.2, 0.2]] };
        let Say::Mark(a) = p.mark("doc", arrow.clone()).unwrap() else { panic!() };
        let Say::Mark(b) = p.mark("spec", arrow.clone()).unwrap() else { panic!() };
        let Say::Mark(c) = p.mark("doc", arrow.clone()).unwrap() else { panic!() };
        assert_eq!((a.id, b.id, c.id), (1, 2, 3));
        assert_ne!(a.color, b.color);
        assert_eq!(a.color, c.color);
        // Zoom and window keep the marks; another slice drops them.
        let mut zoomed = view(0);
        zoomed.zoom = 4.0;
        zoomed.window = Some("bone".into());
        p.show("spec", true, zoomed).unwrap();
        assert_eq!(p.marks.len(), 3);
        p.show("spec", true, view(1)).unwrap();
        assert!(p.marks.is_empty());
        let bad = MarkInput { kind: MarkKind::Circle, points: vec![[0.1, 0.1], [1.5, 0.2]] };
        assert_eq!(p.mark("doc", bad).unwrap_err().0, "invalid_message");
        let one = MarkInput { kind: MarkKind::Line, points: vec![[0.1, 0.1]] };
        assert_eq!(p.mark("doc", one).unwrap_err().0, "invalid_message");
        assert_eq!(p.point("doc", Some([0.5, 1.2])).unwrap_err().0, "invalid_message");
        assert!(matches!(p.point("doc", None), Ok(Say::Pointer { at: None, .. })));
    }

    #[test]
    fn a_view_is_checked() {
        let mut p = CasePanel::default();
        let mut v = view(0);
        v.zoom = 0.5;
        assert_eq!(p.show("spec", true, v).unwrap_err().0, "invalid_message");
        let mut v = view(0);
        v.window = Some("custom".into());
        assert!(p.show("spec", true, v.clone()).is_err(), "custom needs center and width");
        v.center = Some(40.0);
        v.width = Some(400.0);
        assert!(p.show("spec", true, v).is_ok());
        let mut v = view(0);
        v.attachment = "../etc".into();
        assert!(p.show("spec", true, v).is_err());
    }
}
