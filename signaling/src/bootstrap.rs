//! First start: the administrator account. `--demo`: sites and users to try the workflow.

use jiff::Timestamp;

use crate::api::accounts::{UserBodyOwned, create_user_record, default_zone};
use crate::auth::password;
use crate::consult::model::{Role, Site, SiteLevel, User};
use crate::error::AppError;
use crate::ids::SiteId;
use crate::state::AppState;
use crate::store::{AuditEntry, DynStore};

/// Creates `admin` with a one-time password when the store has no users. Returns the password
/// so the caller prints it once; it is never logged. With several nodes starting at once only
/// one creates the account (the username is unique in the store).
pub async fn ensure_admin(st: &AppState) -> Result<Option<String>, AppError> {
    if st.store.count_users().await? > 0 {
        return Ok(None);
    }
    let pw = password::generate();
    let body = UserBodyOwned {
        username: "admin".into(),
        display_name: "Administrator".into(),
        role: Role::Admin,
        password: pw.clone(),
        site_id: None,
        specialty: None,
        must_change_password: true,
    };
    match create_user_record(st, body).await {
        Ok(u) => {
            st.audit.record(AuditEntry::new("system", "admin.bootstrap", Timestamp::now()).target(u.id.as_str()));
            Ok(Some(pw))
        }
        Err(e) if e.code == "username_taken" => Ok(None),
        Err(e) => Err(e),
    }
}

/// Sets a new one-time password for `username` from the command line: the way back in when
/// no administrator can sign in (the first start's password was lost). Signs the user out
/// everywhere, as an administrator's reset does, and audits it as done by `system:cli`.
/// Returns the account and the password, for the caller to show once; the password is never
/// logged. A disabled account stays disabled (re-enabling it is an administrator's decision,
/// made in the app).
pub async fn reset_password(store: &DynStore, username: &str) -> Result<(User, String), AppError> {
    let name = username.trim().to_lowercase();
    let mut user = store
        .get_user_by_name(&name)
        .await?
        .ok_or_else(|| AppError::not_found("user_not_found", format!("no user named {name}")))?;
    let pw = password::generate();
    let hashing = pw.clone();
    user.password_hash = tokio::task::spawn_blocking(move || password::hash(&hashing))
        .await
        .map_err(|e| crate::auth::password::HashError::Failed(e.to_string()))??;
    user.token_generation += 1;
    user.must_change_password = true;
    store.update_user(&user).await?;
    store
        .append_audit(&AuditEntry::new("system:cli", "admin.password_reset", Timestamp::now()).target(user.id.as_str()))
        .await?;
    Ok((user, pw))
}

pub const DEMO_PASSWORD: &str = "huizhen-demo";

/// Demo sites and one user of each role per site kind. Idempotent: skipped if already seeded.
/// Returns the usernames created.
pub async fn seed_demo(st: &AppState) -> Result<Vec<(String, Role)>, AppError> {
    if st.store.get_user_by_name("coordinator").await?.is_some() {
        return Ok(Vec::new());
    }
    let now = Timestamp::now();
    let site = |name: &str, level| Site {
        id: SiteId::generate(),
        name: name.into(),
        level,
        time_zone: default_zone(),
        created_at: now,
    };
    let city = site("市第一人民医院 City No.1 Hospital", SiteLevel::City);
    let county_a = site("东县人民医院 East County Hospital", SiteLevel::County);
    let county_b = site("西县人民医院 West County Hospital", SiteLevel::County);
    let township = site("南镇卫生院 South Township Clinic", SiteLevel::Township);
    for s in [&city, &county_a, &county_b, &township] {
        st.store.put_site(s).await?;
    }
    let people: [(&str, &str, Role, &SiteId, Option<&str>); 8] = [
        ("coordinator", "会诊中心 王协调", Role::Coordinator, &city.id, None),
        ("cardiologist", "李心内 主任医师", Role::Specialist, &city.id, Some("cardiology")),
        ("neurologist", "张神内 主任医师", Role::Specialist, &city.id, Some("neurology")),
        ("surgeon", "赵外科 主任医师", Role::Specialist, &city.id, Some("general_surgery")),
        ("doctor-east", "陈医生 (东县)", Role::Doctor, &county_a.id, Some("internal_medicine")),
        ("doctor-west", "刘医生 (西县)", Role::Doctor, &county_b.id, Some("internal_medicine")),
        ("doctor-south", "周医生 (南镇)", Role::Doctor, &township.id, Some("general_practice")),
        ("trainee", "吴学员", Role::Viewer, &township.id, None),
    ];
    let mut made = Vec::new();
    for (username, name, role, site, specialty) in people {
        let body = UserBodyOwned {
            username: username.into(),
            display_name: name.into(),
            role,
            password: DEMO_PASSWORD.into(),
            site_id: Some(site.clone()),
            specialty: specialty.map(str::to_owned),
            must_change_password: false,
        };
        match create_user_record(st, body).await {
            Ok(_) => made.push((username.to_owned(), role)),
            Err(e) if e.code == "username_taken" => {}
            Err(e) => return Err(e),
        }
    }
    st.audit.record(AuditEntry::new("system", "admin.demo_seeded", now));
    Ok(made)
}
