//! One declaration per route. A handler is registered with the `#[utoipa::path]` that
//! documents it, and that one line both routes requests to it and puts its operation in
//! the OpenAPI document: a handler cannot be served without being documented, nor
//! documented without being served, and the document needs no list of its own.
//!
//! The path and the method come from the documentation, so they are written once. The
//! routes of one path become one actix resource, with a route per method: a method the
//! path lacks is answered 405 with `Allow` (a guard per resource would fall through to
//! 404 instead). Paths are tried in the order they are first declared, so `/users/me`
//! must come before `/users/{id}`.
//!
//! HTTP as clients expect it comes with every path: `HEAD` wherever there is a `GET`
//! (the same handler; the server sends its headers and no body), and `OPTIONS`, which
//! answers 204 with `Allow`.

use actix_web::http::{Method, header};
use actix_web::{FromRequest, Handler, HttpResponse, Responder, Route, web};
use utoipa::ToResponse;
use utoipa::openapi::path::{HttpMethod, Paths};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::{Components, OpenApi, RefOr, Response};
use utoipa_actix_web::OpenApiFactory;

/// The routes of the application, in declaration order, and their documentation.
#[derive(Default)]
pub(crate) struct Routes {
    resources: Vec<Resource>,
    paths: Paths,
    schemas: Vec<(String, RefOr<Schema>)>,
    responses: Vec<(String, RefOr<Response>)>,
}

impl Routes {
    /// These routes and those `module` (a module's `routes`) adds.
    pub(crate) fn with(self, module: fn(Self) -> Self) -> Self {
        module(self)
    }

    /// Serves `handler` at the path and for the method its documentation `doc` (the
    /// `__path_<handler>` type of its `#[utoipa::path]`) declares.
    ///
    /// # Panics
    /// When the documentation declares no method or several: one handler answers one
    /// method, so that its documented responses are its own.
    #[allow(
        clippy::needless_pass_by_value,
        reason = "`doc` is the handler's unit-struct twin, passed beside it for reading"
    )]
    pub(crate) fn route<D, F, Args>(mut self, doc: D, handler: F) -> Self
    where
        D: utoipa::Path + OpenApiFactory,
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        let path = D::path();
        let [method] = &D::methods()[..] else {
            panic!("{path}: a handler documents exactly one method");
        };
        let method = actix_method(method);
        if !self.resources.iter().any(|known| known.path == path) {
            self.resources.push(Resource::new(path.clone()));
        }
        let resource = self
            .resources
            .iter_mut()
            .find(|known| known.path == path)
            .expect("added above");
        if method == Method::GET {
            resource.add(Method::GET, web::method(Method::GET).to(handler.clone()));
            resource.add(Method::HEAD, web::method(Method::HEAD).to(handler));
        } else {
            resource.add(method.clone(), web::method(method).to(handler));
        }
        self.paths.merge(doc.paths());
        doc.schemas(&mut self.schemas);
        self
    }

    /// Adds a response that routes name with `response = R` in their documentation, so
    /// that the module declaring it also registers it.
    pub(crate) fn response<'r, R: ToResponse<'r>>(mut self) -> Self {
        let (name, response) = R::response();
        self.responses.push((name.to_owned(), response));
        self
    }

    /// Registers every resource on `config`, in declaration order.
    pub(crate) fn register(self, config: &mut web::ServiceConfig) {
        for resource in self.resources {
            let mut allow = resource.methods;
            allow.push(Method::OPTIONS);
            let allow = allow
                .iter()
                .map(Method::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            let options = web::method(Method::OPTIONS).to(move || {
                let allow = allow.clone();
                async move {
                    HttpResponse::NoContent()
                        .insert_header((header::ALLOW, allow))
                        .finish()
                }
            });
            let service = resource
                .routes
                .into_iter()
                .fold(web::resource(resource.path), actix_web::Resource::route)
                .route(options);
            config.service(service);
        }
    }

    /// `document` with every route's operation and the schemas they name.
    pub(crate) fn document(self, mut document: OpenApi) -> OpenApi {
        document.paths.merge(self.paths);
        let components = document.components.get_or_insert_with(Components::new);
        components.schemas.extend(self.schemas);
        components.responses.extend(self.responses);
        document
    }
}

/// One path: its routes, and the methods they answer.
struct Resource {
    path: String,
    routes: Vec<Route>,
    methods: Vec<Method>,
}

impl Resource {
    fn new(path: String) -> Self {
        Self {
            path,
            routes: Vec::new(),
            methods: Vec::new(),
        }
    }

    fn add(&mut self, method: Method, route: Route) {
        self.methods.push(method);
        self.routes.push(route);
    }
}

fn actix_method(method: &HttpMethod) -> Method {
    match method {
        HttpMethod::Get => Method::GET,
        HttpMethod::Post => Method::POST,
        HttpMethod::Put => Method::PUT,
        HttpMethod::Delete => Method::DELETE,
        HttpMethod::Options => Method::OPTIONS,
        HttpMethod::Head => Method::HEAD,
        HttpMethod::Patch => Method::PATCH,
        HttpMethod::Trace => Method::TRACE,
    }
}
