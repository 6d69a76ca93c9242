//! Customers, the incidents that affect them, direct communication, and subscribers.

use sqlx::{Row, Sqlite, Transaction};

use super::audit::Who;
use super::tx::event;
use super::tx::insert;
use super::{Store, StoreError, err};
use crate::incident::Ms;
use crate::model::Letters;
use crate::model::NewNotification;
use crate::rules::policy::Delivery;

/// A customer with its contacts and what it uses.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CustomerRow {
    pub id: i64,
    pub name: String,
    pub lang: String,
    pub contacts: Vec<String>,
    /// (component | agent, name).
    pub uses: Vec<(String, String)>,
}

/// A subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberRow {
    pub id: i64,
    pub email: String,
    pub lang: String,
    pub components: Vec<String>,
    pub token: String,
    pub confirmed_ms: Option<Ms>,
}

fn email_to(to: &str) -> String {
    serde_json::to_string(&Delivery::Email { to: to.to_string() }).unwrap_or_default()
}

/// A notification by e-mail to one address.
fn mail(
    incident: Option<i64>,
    dedup: String,
    kind: &str,
    to: &str,
    (subject, body): (String, String),
) -> NewNotification {
    NewNotification {
        incident_id: incident,
        dedup,
        kind: kind.into(),
        recipient: to.into(),
        delivery: email_to(to),
        subject,
        body,
        payload: String::new(),
    }
}

async fn customers_where(tx: &mut sqlx::SqliteConnection, ids: Option<&[i64]>) -> Result<Vec<CustomerRow>, StoreError> {
    let rows = sqlx::query("SELECT id, name, lang FROM customers ORDER BY name")
        .fetch_all(&mut *tx)
        .await
        .map_err(err("reading customers"))?;
    let mut out = Vec::new();
    for r in rows {
        let id: i64 = r.get(0);
        if ids.is_some_and(|ids| !ids.contains(&id)) {
            continue;
        }
        let contacts: Vec<String> =
            sqlx::query_scalar("SELECT email FROM customer_contacts WHERE customer_id = ? ORDER BY email")
                .bind(id)
                .fetch_all(&mut *tx)
                .await
                .map_err(err("reading contacts"))?;
        let uses = sqlx::query("SELECT kind, name FROM customer_uses WHERE customer_id = ? ORDER BY kind, name")
            .bind(id)
            .fetch_all(&mut *tx)
            .await
            .map_err(err("reading what customers use"))?
            .iter()
            .map(|u| (u.get(0), u.get(1)))
            .collect();
        out.push(CustomerRow { id, name: r.get(1), lang: r.get(2), contacts, uses });
    }
    Ok(out)
}

/// The customers an incident affects: those using one of its components or agents, plus
/// those added at triage, minus those removed.
async fn affected(tx: &mut sqlx::SqliteConnection, incident: i64) -> Result<Vec<CustomerRow>, StoreError> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT u.customer_id FROM customer_uses u WHERE
            (u.kind = 'component' AND u.name IN (SELECT component FROM incident_components WHERE incident_id = ?1))
            OR (u.kind = 'agent' AND (u.name IN (SELECT agent FROM incidents WHERE id = ?1 AND agent IS NOT NULL)
                                      OR u.name IN (SELECT agent FROM incident_alerts WHERE incident_id = ?1)))
         UNION SELECT customer_id FROM incident_customers WHERE incident_id = ?1 AND included = 1
         EXCEPT SELECT customer_id FROM incident_customers WHERE incident_id = ?1 AND included = 0",
    )
    .bind(incident)
    .fetch_all(&mut *tx)
    .await
    .map_err(err("deriving affected customers"))?;
    customers_where(tx, Some(&ids)).await
}

/// Resolution mails for an incident that was communicated directly (in the routing
/// transaction of its `resolved` event; the dedup key names the event, so once each).
pub(crate) async fn resolution_mails(
    tx: &mut Transaction<'_, Sqlite>,
    incident: i64,
    title: &str,
    event_id: i64,
    letters: &dyn Letters,
    now: Ms,
) -> Result<usize, StoreError> {
    let mode: Option<String> = sqlx::query_scalar("SELECT communication FROM incidents WHERE id = ?")
        .bind(incident)
        .fetch_one(&mut **tx)
        .await
        .map_err(err("reading how an incident is communicated"))?;
    if mode.as_deref() != Some("direct") {
        return Ok(0);
    }
    let mut written = 0;
    let mut told = Vec::new();
    for c in affected(tx, incident).await? {
        for to in &c.contacts {
            let text = letters.customer_resolved(&c.lang, title);
            let n = mail(
                Some(incident),
                format!("cust:{incident}:resolved:{event_id}:{to}"),
                "customer_resolved",
                to,
                text,
            );
            if insert(tx, &n, now).await? {
                written += 1;
                told.push(to.clone());
            }
        }
    }
    if !told.is_empty() {
        let text = format!("resolution e-mailed to {}", told.join(", "));
        event(tx, incident, now, "system", "customer_resolved", &text, false).await?;
    }
    Ok(written)
}

/// An incident on the status page that resolves gets a closing public update (unless a person
/// already posted one), and its subscribers hear it: in the routing transaction of the
/// `resolved` event.
pub(crate) async fn public_resolution(
    tx: &mut Transaction<'_, Sqlite>,
    incident: i64,
    title: &str,
    letters: &dyn Letters,
    now: Ms,
) -> Result<bool, StoreError> {
    let (mode, last): (Option<String>, Option<String>) = sqlx::query(
        "SELECT communication, (SELECT status FROM public_updates u WHERE u.incident_id = i.id ORDER BY id DESC LIMIT 1)
         FROM incidents i WHERE id = ?",
    )
    .bind(incident)
    .fetch_one(&mut **tx)
    .await
    .map(|r| (r.get(0), r.get(1)))
    .map_err(err("reading how an incident is communicated"))?;
    if mode.as_deref() != Some("public") || last.as_deref() == Some("resolved") {
        return Ok(false);
    }
    let body = "This incident is resolved. / Händelsen är löst.";
    let update: i64 = sqlx::query_scalar(
        "INSERT INTO public_updates (incident_id, status, body, ts_ms, actor) VALUES (?, 'resolved', ?, ?, 'system') RETURNING id",
    )
    .bind(incident)
    .bind(body)
    .bind(now)
    .fetch_one(&mut **tx)
    .await
    .map_err(err("adding a public update"))?;
    let mailed = subscriber_mails(tx, incident, update, (title, "resolved", body), letters, now).await?;
    let text = format!("public update (resolved) posted on resolution; e-mailed to {mailed} subscribers");
    event(tx, incident, now, "system", "public_update", &text, false).await?;
    Ok(true)
}

/// Public-update mails to confirmed subscribers of the incident's components (or of
/// everything), in the update's transaction.
pub(crate) async fn subscriber_mails(
    tx: &mut Transaction<'_, Sqlite>,
    incident: i64,
    update_id: i64,
    (title, status, text): (&str, &str, &str),
    letters: &dyn Letters,
    now: Ms,
) -> Result<usize, StoreError> {
    let components: Vec<String> = sqlx::query_scalar("SELECT component FROM incident_components WHERE incident_id = ?")
        .bind(incident)
        .fetch_all(&mut **tx)
        .await
        .map_err(err("reading components"))?;
    let subscribers =
        sqlx::query("SELECT id, email, lang, components, token FROM subscribers WHERE confirmed_ms IS NOT NULL")
            .fetch_all(&mut **tx)
            .await
            .map_err(err("reading subscribers"))?;
    let mut written = 0;
    for s in subscribers {
        let follows: String = s.get(3);
        let wants = follows.is_empty() || follows.split(',').any(|c| components.iter().any(|x| x == c));
        if !wants {
            continue;
        }
        let (id, to, lang, token): (i64, String, String, String) = (s.get(0), s.get(1), s.get(2), s.get(4));
        let words = letters.subscriber_update(&lang, title, status, text, &token);
        let n = mail(Some(incident), format!("sub:{update_id}:{id}"), "subscriber_update", &to, words);
        if insert(tx, &n, now).await? {
            written += 1;
        }
    }
    Ok(written)
}

impl Store {
    /// Add a customer. None if the name is taken.
    pub async fn add_customer(
        &self,
        who: &Who,
        name: &str,
        lang: &str,
        contacts: &[String],
        uses: &[(String, String)],
        now: Ms,
    ) -> Result<Option<i64>, StoreError> {
        let mut audit = self.audit_begin(who, "customer.add", format!("customer:{name}"), now).await?;
        let tx = audit.tx();
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO customers (name, lang, created_ms) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING RETURNING id",
        )
        .bind(name)
        .bind(lang)
        .bind(now)
        .fetch_optional(&mut **tx)
        .await
        .map_err(err("adding a customer"))?;
        if let Some(id) = id {
            for email in contacts {
                sqlx::query("INSERT OR IGNORE INTO customer_contacts (customer_id, email) VALUES (?, ?)")
                    .bind(id)
                    .bind(email)
                    .execute(&mut **tx)
                    .await
                    .map_err(err("adding a contact"))?;
            }
            for (kind, used) in uses {
                sqlx::query("INSERT OR IGNORE INTO customer_uses (customer_id, kind, name) VALUES (?, ?, ?)")
                    .bind(id)
                    .bind(kind)
                    .bind(used)
                    .execute(&mut **tx)
                    .await
                    .map_err(err("linking a customer"))?;
            }
        }
        audit.done(id).await
    }

    pub async fn customers(&self) -> Result<Vec<CustomerRow>, StoreError> {
        let mut c = self.pool().acquire().await.map_err(err("reading customers"))?;
        customers_where(&mut c, None).await
    }

    pub async fn affected_customers(&self, incident: i64) -> Result<Vec<CustomerRow>, StoreError> {
        let mut c = self.pool().acquire().await.map_err(err("reading customers"))?;
        affected(&mut c, incident).await
    }

    /// Triage: count a customer in (or out of) an incident. Ok(false): no such incident or
    /// customer.
    pub async fn set_incident_customer(
        &self,
        who: &Who,
        incident: i64,
        customer: &str,
        included: bool,
        now: Ms,
    ) -> Result<bool, StoreError> {
        let mut audit = self.audit_begin(who, "incident.customer", format!("incident:{incident}"), now).await?;
        let tx = audit.tx();
        let ids: Option<(i64, i64)> =
            sqlx::query("SELECT i.id, c.id FROM incidents i, customers c WHERE i.id = ? AND c.name = ?")
                .bind(incident)
                .bind(customer)
                .fetch_optional(&mut **tx)
                .await
                .map_err(err("reading an incident and a customer"))?
                .map(|r| (r.get(0), r.get(1)));
        let Some((_, customer_id)) = ids else { return audit.done(false).await };
        sqlx::query(
            "INSERT INTO incident_customers (incident_id, customer_id, included) VALUES (?, ?, ?)
             ON CONFLICT (incident_id, customer_id) DO UPDATE SET included = excluded.included",
        )
        .bind(incident)
        .bind(customer_id)
        .bind(included)
        .execute(&mut **tx)
        .await
        .map_err(err("editing affected customers"))?;
        let text = format!("customer {customer} {} by {}", if included { "added" } else { "removed" }, who.name);
        event(tx, incident, now, &who.name, "customers", &text, false).await?;
        audit.done(true).await
    }

    /// Tell the affected customers' contacts directly (the incident is then communicated
    /// directly, and they hear the resolution too). Returns who was written to.
    pub async fn tell_customers(
        &self,
        who: &Who,
        incident: i64,
        (title, status, text): (&str, &str, &str),
        letters: &dyn Letters,
        now: Ms,
    ) -> Result<Vec<String>, StoreError> {
        let mut audit = self.audit_begin(who, "incident.customer_update", format!("incident:{incident}"), now).await?;
        let tx = audit.tx();
        let mut told = Vec::new();
        for c in affected(tx, incident).await? {
            for to in &c.contacts {
                let words = letters.customer_update(&c.lang, title, status, text);
                let n = mail(Some(incident), format!("cust:{incident}:{now}:{to}"), "customer_update", to, words);
                if insert(tx, &n, now).await? {
                    told.push(format!("{to} ({})", c.name));
                }
            }
        }
        if !told.is_empty() {
            sqlx::query("UPDATE incidents SET communication = 'direct', updated_ms = ? WHERE id = ?")
                .bind(now)
                .bind(incident)
                .execute(&mut **tx)
                .await
                .map_err(err("marking direct communication"))?;
            let line = format!("update ({status}) e-mailed by {} to {}: {text}", who.name, told.join(", "));
            event(tx, incident, now, &who.name, "customer_update", &line, false).await?;
        }
        let told_now = told.clone();
        audit.done(!told.is_empty()).await?;
        Ok(told_now)
    }

    /// A new subscription (unconfirmed) and its confirmation mail. None: the address is
    /// already subscribed (nothing is sent, so the form cannot be used to flood it).
    pub async fn subscribe(
        &self,
        email: &str,
        lang: &str,
        components: &[String],
        letters: &dyn Letters,
        now: Ms,
    ) -> Result<Option<()>, StoreError> {
        let token = crate::auth::new_secret();
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await.map_err(err("starting a transaction"))?;
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO subscribers (email, lang, components, token, created_ms) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (email) DO NOTHING RETURNING id",
        )
        .bind(email)
        .bind(lang)
        .bind(components.join(","))
        .bind(&token)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(err("adding a subscriber"))?;
        let Some(id) = id else { return Ok(None) };
        let words = letters.subscriber_confirm(lang, &token);
        insert(&mut tx, &mail(None, format!("sub:confirm:{id}"), "subscriber_confirm", email, words), now).await?;
        tx.commit().await.map_err(err("committing"))?;
        Ok(Some(()))
    }

    /// Confirm a subscription by its token. Ok(false): unknown token.
    pub async fn confirm_subscriber(&self, token: &str, now: Ms) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE subscribers SET confirmed_ms = COALESCE(confirmed_ms, ?) WHERE token = ?")
            .bind(now)
            .bind(token)
            .execute(self.pool())
            .await
            .map_err(err("confirming a subscriber"))?
            .rows_affected();
        Ok(done > 0)
    }

    /// End a subscription: the address is deleted. Ok(false): unknown token.
    pub async fn unsubscribe(&self, token: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM subscribers WHERE token = ?")
            .bind(token)
            .execute(self.pool())
            .await
            .map_err(err("removing a subscriber"))?
            .rows_affected();
        Ok(done > 0)
    }

    pub async fn subscribers(&self) -> Result<Vec<SubscriberRow>, StoreError> {
        let rows = sqlx::query("SELECT id, email, lang, components, token, confirmed_ms FROM subscribers ORDER BY id")
            .fetch_all(self.pool())
            .await
            .map_err(err("reading subscribers"))?;
        Ok(rows
            .iter()
            .map(|r| SubscriberRow {
                id: r.get(0),
                email: r.get(1),
                lang: r.get(2),
                components: r.get::<String, _>(3).split(',').filter(|c| !c.is_empty()).map(str::to_string).collect(),
                token: r.get(4),
                confirmed_ms: r.get(5),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::rules::policy::{Policy, Public, Severity};

    #[tokio::test]
    async fn a_public_incident_that_resolves_posts_its_closing_update_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("vakt.db")).await.unwrap();
        let who = Who::test("ops", "technician");
        let public = Public::default();
        let meta = Policy::default().manual_meta(&[]).unwrap();
        let id = store
            .open_manual("Mail slow", Severity::Major, crate::model::Source::Manual, &[], &meta, &who, 1000)
            .await
            .unwrap();
        store.subscribe("fan@example.org", "en", &[], &public, 1000).await.unwrap();
        let token = store.subscribers().await.unwrap()[0].token.clone();
        assert!(store.confirm_subscriber(&token, 1001).await.unwrap());
        assert!(store.publish_update(id, "investigating", "Looking", &public, &who, 2000).await.unwrap());
        assert!(store.resolve(id, &who, 3000).await.unwrap());
        for _ in 0..2 {
            store.route(4000, &public, |_, _, _| Vec::new(), |_| Vec::new()).await.unwrap();
        }
        let updates = store.public_updates(id).await.unwrap();
        assert_eq!(updates.iter().map(|u| u.status.as_str()).collect::<Vec<_>>(), ["investigating", "resolved"]);
        let mails: Vec<_> = store
            .notifications(Some(id))
            .await
            .unwrap()
            .into_iter()
            .filter(|n| n.kind == "subscriber_update")
            .collect();
        assert_eq!(mails.len(), 2, "{mails:#?}");
    }
}
