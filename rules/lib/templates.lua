-- Message templates used by rules/sms.lua ({{name}} placeholders).
return {
  welcome = "Hi {{from}}, thanks for your message \"{{text}}\". Reply HOURS for opening hours, "
         .. "ORDER and your order number for its status, HELP for help, STOP to opt out.",
  hours = "We are open Monday to Friday, 9am to 5pm Pacific.",
  order_status = "Order {{order}}: packed and handed to the carrier. Reply STOP to opt out.",
  order_usage = "Send ORDER and your order number, e.g. ORDER 1234.",
  order_later = "Sorry, we cannot look up orders right now. Please try again later.",
  code_wait = "You asked for several codes already. Please try again in {{minutes}} minutes.",
  code_failed = "Sorry, we cannot send a code right now. Please try again later.",
  verify_usage = "Send VERIFY and the code we texted you, e.g. VERIFY 123456.",
  verified = "Thanks, your number is verified.",
  not_verified = "That code is not right, or it has expired. Send CODE for a new one.",
}
