//! A signed-in user of the web console, over plain HTTP: the session cookie and the CSRF token
//! held as a browser would hold them, redirects not followed (tests look at them).

use super::admin::TOKEN;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;

pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

pub struct Console {
    pub base: String,
    pub cookie: String,
    pub csrf: String,
    client: reqwest::Client,
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client")
}

async fn page(resp: reqwest::Response) -> Page {
    Page {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.text().await.expect("body"),
    }
}

/// `POST /login` with `token` on the admin listener at `base`.
pub async fn sign_in_with(base: &str, token: &str) -> Page {
    let resp = client()
        .post(format!("{base}/login"))
        .form(&[("token", token)])
        .send()
        .await
        .expect("sign in");
    page(resp).await
}

/// The `csrf` hidden field of a page.
pub fn csrf_of(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    Some(html[at..].split('"').next()?.to_string())
}

impl Console {
    /// Signs in with the test token and reads the CSRF token off the overview.
    pub async fn sign_in(admin_url: &str) -> Self {
        let answer = sign_in_with(admin_url, TOKEN).await;
        assert_eq!(answer.status, 303, "sign-in: {}", answer.body);
        let set = answer
            .headers
            .get(SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .expect("a session cookie");
        let cookie = set.split(';').next().expect("name=value").to_string();
        let mut console = Self {
            base: admin_url.to_string(),
            cookie,
            csrf: String::new(),
            client: client(),
        };
        let overview = console.get("/").await;
        assert_eq!(overview.status, 200, "{}", overview.body);
        console.csrf = csrf_of(&overview.body).expect("a CSRF field on the overview");
        console
    }

    pub async fn get(&self, path: &str) -> Page {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .expect("get");
        page(resp).await
    }

    /// Posts `form` with the session's CSRF token added.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let mut all: Vec<(&str, &str)> = form.to_vec();
        all.push(("csrf", &self.csrf));
        self.post_raw(path, &all, &[]).await
    }

    /// Posts exactly `form`, with `headers`: for the checks that refuse.
    pub async fn post_raw(
        &self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .form(form);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        page(req.send().await.expect("post")).await
    }
}
