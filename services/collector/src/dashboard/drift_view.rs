//! The scan page's drift section: for a container scan, the controls
//! whose status differs from the image scan of the same digest and
//! profile version (what changed in the running container since its
//! image was scanned), or why there is nothing to compare with.

use maud::{Markup, html};
use scanfleet_result_store::StoredResult;

use super::hdf_view::status_label;
use super::overview::urlencode;
use crate::drift_recording::DriftReport;

/// A status key's label, `absent` included (a control one side lacks).
fn label(status: &str) -> &'static str {
    match status {
        "absent" => "Absent",
        other => status_label(other),
    }
}

/// The section for `r`: nothing for an image scan; otherwise its drift
/// report, or a note that no image scan of its digest is stored.
pub fn section(r: &StoredResult, drift: Option<&DriftReport>) -> Markup {
    if r.is_image_scan() {
        return html! {};
    }
    html! {
        h2 id="drift" { "Drift against the image scan" }
        @match drift {
            None => p id="drift-none" class="muted" {
                "No completed image scan of " code { (r.image_digest) } " with "
                (r.profile_name) " " (r.profile_version) " is stored, so there is nothing to compare with."
            },
            Some(d) => {
                p {
                    "Compared with image scan "
                    a href={"/ui/scans/" (urlencode(&d.record.image_scan_id))} { code { (d.record.image_scan_id) } }
                    ": " (d.controls.len()) " control(s) differ."
                }
                @if !d.controls.is_empty() {
                    table id="drift-table" {
                        thead { tr {
                            th scope="col" { "Control" } th scope="col" { "Image" }
                            th scope="col" { "Container" } th scope="col" { "Container message" }
                        } }
                        tbody {
                            @for c in &d.controls {
                                tr {
                                    td { a href={"/ui/controls/" (urlencode(&c.id))} { (c.id) } br; (c.title) }
                                    td { span class={"badge " (c.image.status)} { (label(&c.image.status)) } }
                                    td { span class={"badge " (c.container.status)} { (label(&c.container.status)) } }
                                    td { @if !c.container.message.is_empty() { pre { (c.container.message) } } }
                                }
                            }
                        }
                    }
                }
            },
        }
    }
}
