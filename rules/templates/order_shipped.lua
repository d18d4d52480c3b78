-- An order update, for `telua campaign --template order_shipped` and
-- rules (`require("telua.templates").load("rules/templates")`).
return {
  default_locale = "en",
  locales = {
    en = "Hi {{name}}, your order {{order}} has shipped. Reply STOP to opt out.",
    es = "Hola {{name}}, tu pedido {{order}} ha sido enviado. Responde STOP para no recibir más mensajes.",
    ["pt-BR"] = "Oi {{name}}, seu pedido {{order}} foi enviado. Responda STOP para sair.",
    fr = "Bonjour {{name}}, votre commande {{order}} a été expédiée. Répondez STOP pour vous désabonner.",
  },
  -- the approved WhatsApp template with the same words: {{1}} = name, {{2}} = order
  whatsapp = { content_sid = "HX0a1b2c3d4e5f60718293a4b5c6d7e8f9", variables = { "name", "order" } },
}
