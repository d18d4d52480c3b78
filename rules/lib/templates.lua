-- Message templates used by rules/sms.lua ({{name}} placeholders).
return {
  welcome = "Hi {{from}}, thanks for your message \"{{text}}\". Reply HOURS for opening hours, "
         .. "HELP for help, STOP to opt out.",
  hours = "We are open Monday to Friday, 9am to 5pm Pacific.",
}
